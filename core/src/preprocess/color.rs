//! 8-bit colour conversions bit-exact with OpenCV's `cvtColor` integer paths:
//! `COLOR_RGB2HSV` (H in [0, 180), S and V in [0, 255]) and `COLOR_RGB2YCrCb`
//! (channel order Y, Cr, Cb).

use std::sync::OnceLock;

use super::{ColorSpace, RgbImage};

const HSV_SHIFT: u32 = 12;
const YUV_SHIFT: u32 = 14;
// OpenCV's fixed-point BT.601 coefficients (color.hpp: R2Y, G2Y, B2Y, YCRI, YCBI).
const R2Y: i32 = 4899;
const G2Y: i32 = 9617;
const B2Y: i32 = 1868;
const YCRI: i32 = 11682;
const YCBI: i32 = 9241;

/// OpenCV's `sdiv_table` and `hdiv_table180`.
fn hsv_tables() -> &'static ([i32; 256], [i32; 256]) {
    static T: OnceLock<([i32; 256], [i32; 256])> = OnceLock::new();
    T.get_or_init(|| {
        let mut sdiv = [0i32; 256];
        let mut hdiv = [0i32; 256];
        for i in 1..256 {
            sdiv[i] = (f64::from(255 << HSV_SHIFT) / i as f64).round() as i32;
            hdiv[i] = (f64::from(180 << HSV_SHIFT) / (6.0 * i as f64)).round() as i32;
        }
        (sdiv, hdiv)
    })
}

/// One RGB pixel to OpenCV 8-bit HSV.
pub fn rgb_to_hsv(p: [u8; 3]) -> [u8; 3] {
    let (sdiv, hdiv) = hsv_tables();
    let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
    let v = r.max(g).max(b);
    let diff = v - r.min(g).min(b);
    let half = 1 << (HSV_SHIFT - 1);
    let s = (diff * sdiv[v as usize] + half) >> HSV_SHIFT;
    let h = if v == r {
        g - b
    } else if v == g {
        b - r + 2 * diff
    } else {
        r - g + 4 * diff
    };
    let mut h = (h * hdiv[diff as usize] + half) >> HSV_SHIFT;
    if h < 0 {
        h += 180;
    }
    [h as u8, s as u8, v as u8]
}

/// One RGB pixel to OpenCV 8-bit YCrCb (Y, Cr, Cb).
pub fn rgb_to_ycrcb(p: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
    let descale = |x: i32| (x + (1 << (YUV_SHIFT - 1))) >> YUV_SHIFT;
    let delta = 128 << YUV_SHIFT;
    let y = descale(r * R2Y + g * G2Y + b * B2Y);
    let cr = descale((r - y) * YCRI + delta);
    let cb = descale((b - y) * YCBI + delta);
    [y, cr, cb].map(|v| v.clamp(0, 255) as u8)
}

/// One RGB pixel in colour space `space` (3 channels, 8-bit).
pub fn convert_pixel(p: [u8; 3], space: ColorSpace) -> [u8; 3] {
    match space {
        ColorSpace::Rgb => p,
        ColorSpace::Bgr => [p[2], p[1], p[0]],
        ColorSpace::Hsv => rgb_to_hsv(p),
        ColorSpace::Ycrcb => rgb_to_ycrcb(p),
    }
}

/// The whole image in colour space `space`; the result's 3 bytes per pixel are that
/// space's channels in order (e.g. H, S, V).
pub fn convert(img: &RgbImage, space: ColorSpace) -> RgbImage {
    let data = img
        .data
        .chunks_exact(3)
        .flat_map(|p| convert_pixel([p[0], p[1], p[2]], space))
        .collect();
    RgbImage {
        width: img.width,
        height: img.height,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primaries_hsv() {
        assert_eq!(rgb_to_hsv([255, 0, 0]), [0, 255, 255]);
        assert_eq!(rgb_to_hsv([0, 255, 0]), [60, 255, 255]);
        assert_eq!(rgb_to_hsv([0, 0, 255]), [120, 255, 255]);
        assert_eq!(rgb_to_hsv([0, 0, 0]), [0, 0, 0]);
        assert_eq!(rgb_to_hsv([128, 128, 128]), [0, 0, 128]);
    }

    #[test]
    fn hue_stays_below_180() {
        for r in (0..=255).step_by(5) {
            for g in (0..=255).step_by(5) {
                for b in (0..=255).step_by(5) {
                    assert!(rgb_to_hsv([r, g, b])[0] < 180);
                }
            }
        }
    }

    #[test]
    fn grey_ycrcb() {
        for v in 0..=255u8 {
            assert_eq!(rgb_to_ycrcb([v; 3]), [v, 128, 128]);
        }
    }

    #[test]
    fn bgr_swaps() {
        assert_eq!(convert_pixel([1, 2, 3], ColorSpace::Bgr), [3, 2, 1]);
        let img = RgbImage::from_fn(2, 1, |x, _| [x as u8, 5, 9]);
        assert_eq!(convert(&img, ColorSpace::Rgb), img);
    }
}
