//! Bilinear resize with half-pixel centres — the convention of OpenCV `INTER_LINEAR`
//! (and PIL bilinear without antialias when upscaling): destination pixel `x` samples
//! source position `(x + 0.5) * src_w / dst_w - 0.5`, clamped to the edge pixels.
//! Computed in f64 and rounded to nearest, so it can differ from OpenCV's 11-bit
//! fixed-point arithmetic by at most 1 level.

use super::align::to_u8;
use super::RgbImage;

/// Per destination index: (left/top source index, right/bottom source index, weight of the second).
fn taps(src: u32, dst: u32) -> Vec<(usize, usize, f64)> {
    let scale = f64::from(src) / f64::from(dst);
    let last = src as usize - 1;
    (0..dst)
        .map(|d| {
            let f = (f64::from(d) + 0.5) * scale - 0.5;
            let i = f.floor();
            let frac = f - i;
            if i < 0.0 {
                (0, 0, 0.0)
            } else if i as usize >= last {
                (last, last, 0.0)
            } else {
                (i as usize, i as usize + 1, frac)
            }
        })
        .collect()
}

/// Resizes `src` to `width`×`height`. An empty source or target gives a black /
/// empty image of the requested size.
pub fn resize_bilinear(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    if src.is_empty() || width == 0 || height == 0 {
        return RgbImage::black(width, height);
    }
    if src.width == width && src.height == height {
        return src.clone();
    }
    let (xt, yt) = (taps(src.width, width), taps(src.height, height));
    let sw = src.width as usize;
    let px = |x: usize, y: usize, c: usize| f64::from(src.data[(y * sw + x) * 3 + c]);
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for &(y0, y1, fy) in &yt {
        for &(x0, x1, fx) in &xt {
            for c in 0..3 {
                let top = px(x0, y0, c) * (1.0 - fx) + px(x1, y0, c) * fx;
                let bot = px(x0, y1, c) * (1.0 - fx) + px(x1, y1, c) * fx;
                data.push(to_u8(top * (1.0 - fy) + bot * fy));
            }
        }
    }
    RgbImage {
        width,
        height,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_identity() {
        let img = RgbImage::from_fn(5, 3, |x, y| [x as u8 * 40, y as u8 * 90, 3]);
        assert_eq!(resize_bilinear(&img, 5, 3), img);
    }

    #[test]
    fn upscale_two_pixels() {
        // 2x1 -> 4x1: positions -0.25, 0.25, 0.75, 1.25 -> clamp, 0.25, 0.75, clamp.
        let img = RgbImage::from_fn(2, 1, |x, _| [if x == 0 { 0 } else { 200 }; 3]);
        let out = resize_bilinear(&img, 4, 1);
        let r: Vec<u8> = out.data.chunks(3).map(|p| p[0]).collect();
        assert_eq!(r, vec![0, 50, 150, 200]);
    }

    #[test]
    fn downscale_by_two_averages() {
        let img = RgbImage::from_fn(2, 2, |x, y| [(x * 100 + y * 50) as u8; 3]);
        let out = resize_bilinear(&img, 1, 1);
        assert_eq!(out.data, vec![75, 75, 75]);
    }

    #[test]
    fn empty_source_gives_black() {
        let out = resize_bilinear(&RgbImage::black(0, 0), 2, 2);
        assert_eq!(out, RgbImage::black(2, 2));
    }
}
