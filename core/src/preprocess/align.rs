//! Geometric crop: the 5-point similarity alignment, the square box crop, and the
//! inverse-mapped bilinear warp that executes either.
//!
//! Coordinate conventions (documented once, used everywhere):
//! * Landmarks use OpenCV's pixel-centre convention: pixel `(i, j)` has its centre at
//!   `(i, j)`. The aligned crop is exactly `cv2.warpAffine(frame, M, (W, H),
//!   INTER_LINEAR, BORDER_CONSTANT, 0)` with `M` the least-squares similarity from the
//!   landmarks to [`aligned_template`].
//! * The bbox uses the continuous (edge) convention: `[0, 0, W, H]` is the whole frame.
//!   The box crop resizes the square with half-pixel centres: for an integer box it
//!   equals `cv2.resize(frame[y1:y2, x1:x2], (W, H), INTER_LINEAR)` wherever the samples
//!   fall inside the slice (always when downscaling). At the slice border it samples
//!   the real neighbouring frame pixels (black outside the frame) instead of
//!   replicating the slice edge.

use super::{CropSpec, Face, PreprocessError, RgbImage};

/// The ArcFace 5-point reference template for a 112×112 crop
/// (left eye, right eye, nose, left mouth corner, right mouth corner).
pub const ARCFACE_TEMPLATE_112: [[f64; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A 2×3 affine map `p ↦ (m[0][0] x + m[0][1] y + m[0][2], m[1][0] x + m[1][1] y + m[1][2])`,
/// laid out like OpenCV's `M`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine2 {
    pub m: [[f64; 3]; 2],
}

impl Affine2 {
    pub const IDENTITY: Self = Self {
        m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    };

    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        let m = &self.m;
        [
            m[0][0] * p[0] + m[0][1] * p[1] + m[0][2],
            m[1][0] * p[0] + m[1][1] * p[1] + m[1][2],
        ]
    }

    /// The inverse map, or `None` when singular or not finite.
    pub fn invert(&self) -> Option<Self> {
        let [[a, b, c], [d, e, f]] = self.m;
        let det = a * e - b * d;
        if det == 0.0 || !det.is_finite() {
            return None;
        }
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        let inv = Self {
            m: [[ia, ib, -(ia * c + ib * f)], [id, ie, -(id * c + ie * f)]],
        };
        inv.is_finite().then_some(inv)
    }

    pub fn is_finite(&self) -> bool {
        self.m.iter().flatten().all(|v| v.is_finite())
    }
}

/// Least-squares similarity (rotation + uniform scale + translation, no reflection)
/// mapping `src` onto `dst` — Umeyama's estimate, in its 2-D closed form.
/// `None` when `src` has no spread (all points coincide) or lengths differ / are empty.
pub fn estimate_similarity(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Option<Affine2> {
    if src.len() != dst.len() || src.is_empty() {
        return None;
    }
    let n = src.len() as f64;
    let mean = |pts: &[[f64; 2]]| {
        let s = pts
            .iter()
            .fold([0.0, 0.0], |acc, p| [acc[0] + p[0], acc[1] + p[1]]);
        [s[0] / n, s[1] / n]
    };
    let (ms, md) = (mean(src), mean(dst));
    let (mut var, mut dot, mut cross) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
        let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
        var += sx * sx + sy * sy;
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
    }
    if var == 0.0 || !var.is_finite() {
        return None;
    }
    let (a, b) = (dot / var, cross / var);
    let t = [
        md[0] - (a * ms[0] - b * ms[1]),
        md[1] - (b * ms[0] + a * ms[1]),
    ];
    let m = Affine2 {
        m: [[a, -b, t[0]], [b, a, t[1]]],
    };
    m.is_finite().then_some(m)
}

/// The 5-point template for a `width`×`height` output with context `scale`: the
/// 112×112 ArcFace template scaled by `min(width, height) / 112 / scale` about its
/// centre (56, 56), which lands on the output centre `(width/2, height/2)`.
/// At 112×112 and scale 1 this is exactly [`ARCFACE_TEMPLATE_112`].
pub fn aligned_template(width: u32, height: u32, scale: f64) -> [[f64; 2]; 5] {
    let k = f64::from(width.min(height)) / 112.0 / scale;
    let (cx, cy) = (f64::from(width) / 2.0, f64::from(height) / 2.0);
    ARCFACE_TEMPLATE_112.map(|[x, y]| [(x - 56.0) * k + cx, (y - 56.0) * k + cy])
}

/// The forward (frame → crop) similarity of an aligned crop, as OpenCV's `M`.
pub fn alignment_matrix(
    face: &Face,
    width: u32,
    height: u32,
    scale: f64,
) -> Result<Affine2, PreprocessError> {
    face.check_landmarks()?;
    let src = face.landmarks.map(|[x, y]| [f64::from(x), f64::from(y)]);
    estimate_similarity(&src, &aligned_template(width, height, scale))
        .ok_or(PreprocessError::DegenerateLandmarks)
}

/// The inverse map (crop pixel → frame position) of the crop `crop` for `face`.
/// This is what [`warp`] consumes.
pub fn crop_inverse_map(
    face: &Face,
    crop: CropSpec,
    width: u32,
    height: u32,
) -> Result<Affine2, PreprocessError> {
    match crop {
        CropSpec::Aligned { scale } => alignment_matrix(face, width, height, f64::from(scale))?
            .invert()
            .ok_or(PreprocessError::DegenerateLandmarks),
        CropSpec::Box { scale } => {
            face.check_bbox()?;
            let [x1, y1, x2, y2] = face.bbox.map(f64::from);
            let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
            let side = f64::from(scale) * (x2 - x1).abs().max((y2 - y1).abs());
            let (ax, ay) = (side / f64::from(width), side / f64::from(height));
            // Half-pixel centres: crop pixel x samples L + (x + 0.5) * ax - 0.5.
            Ok(Affine2 {
                m: [
                    [ax, 0.0, cx - side / 2.0 + 0.5 * ax - 0.5],
                    [0.0, ay, cy - side / 2.0 + 0.5 * ay - 0.5],
                ],
            })
        }
    }
}

/// Bilinear sample of `img` at `(x, y)` (pixel-centre coordinates); neighbours outside
/// the frame count as black. Returns `[0.0; 3]` for non-finite coordinates.
pub fn sample_bilinear_black(img: &RgbImage, x: f64, y: f64) -> [f64; 3] {
    let (w, h) = (i64::from(img.width), i64::from(img.height));
    if !(x.is_finite() && y.is_finite()) || x <= -1.0 || y <= -1.0 {
        return [0.0; 3];
    }
    let (fx0, fy0) = (x.floor(), y.floor());
    // Saturating casts: anything beyond i64 range is far outside the frame anyway.
    let (x0, y0) = (fx0 as i64, fy0 as i64);
    if x0 >= w || y0 >= h {
        return [0.0; 3];
    }
    let (fx, fy) = (x - fx0, y - fy0);
    let mut out = [0.0; 3];
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        let yy = y0 + dy;
        if yy < 0 || yy >= h || wy == 0.0 {
            continue;
        }
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let xx = x0 + dx;
            if xx < 0 || xx >= w || wx == 0.0 {
                continue;
            }
            let i = ((yy * w + xx) * 3) as usize;
            let wgt = wx * wy;
            for (o, &v) in out.iter_mut().zip(&img.data[i..i + 3]) {
                *o += wgt * f64::from(v);
            }
        }
    }
    out
}

/// Rounds a bilinear result to u8 (half away from zero, clamped).
pub(crate) fn to_u8(v: f64) -> u8 {
    (v + 0.5).floor().clamp(0.0, 255.0) as u8
}

/// Inverse-mapped warp: crop pixel `(x, y)` takes the bilinear sample of `frame` at
/// `inverse.apply([x, y])`; outside the frame is black.
pub fn warp(frame: &RgbImage, inverse: &Affine2, width: u32, height: u32) -> RgbImage {
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let [sx, sy] = inverse.apply([f64::from(x), f64::from(y)]);
            data.extend(sample_bilinear_black(frame, sx, sy).map(to_u8));
        }
    }
    RgbImage {
        width,
        height,
        data,
    }
}

/// Cuts the crop `crop` of `face` out of `frame` at `width`×`height` (8-bit RGB).
pub fn crop_face(
    frame: &RgbImage,
    face: &Face,
    crop: CropSpec,
    width: u32,
    height: u32,
) -> Result<RgbImage, PreprocessError> {
    frame.validate()?;
    let inv = crop_inverse_map(face, crop, width, height)?;
    Ok(warp(frame, &inv, width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face_with(landmarks: [[f64; 2]; 5]) -> Face {
        Face {
            bbox: [0.0, 0.0, 112.0, 112.0],
            landmarks: landmarks.map(|[x, y]| [x as f32, y as f32]),
            score: 1.0,
        }
    }

    fn close(a: &Affine2, b: &Affine2, tol: f64) -> bool {
        a.m.iter()
            .flatten()
            .zip(b.m.iter().flatten())
            .all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn template_at_112_is_arcface() {
        assert_eq!(aligned_template(112, 112, 1.0), ARCFACE_TEMPLATE_112);
    }

    #[test]
    fn recovers_known_similarity() {
        let (th, s, tx, ty) = (0.3f64, 1.7, 12.0, -5.0);
        let truth = Affine2 {
            m: [
                [s * th.cos(), -s * th.sin(), tx],
                [s * th.sin(), s * th.cos(), ty],
            ],
        };
        let dst = ARCFACE_TEMPLATE_112.map(|p| truth.apply(p));
        let est = estimate_similarity(&ARCFACE_TEMPLATE_112, &dst).unwrap();
        assert!(close(&est, &truth, 1e-9), "{est:?}");
    }

    #[test]
    fn degenerate_landmarks_rejected() {
        let f = face_with([[5.0, 5.0]; 5]);
        assert_eq!(
            crop_inverse_map(&f, CropSpec::Aligned { scale: 1.0 }, 112, 112),
            Err(PreprocessError::DegenerateLandmarks)
        );
    }

    #[test]
    fn larger_scale_zooms_out() {
        let f = face_with(ARCFACE_TEMPLATE_112);
        let m1 = alignment_matrix(&f, 112, 112, 1.0).unwrap();
        let m27 = alignment_matrix(&f, 112, 112, 2.7).unwrap();
        // Landmarks pass through f32, hence the 1e-6 tolerance.
        assert!((m27.m[0][0] - 1.0 / 2.7).abs() < 1e-6 && (m1.m[0][0] - 1.0).abs() < 1e-6);
        // The template centre stays put.
        let c = m27.apply([56.0, 56.0]);
        assert!((c[0] - 56.0).abs() < 1e-4 && (c[1] - 56.0).abs() < 1e-4);
    }

    #[test]
    fn invert_round_trips() {
        let m = Affine2 {
            m: [[1.2, -0.4, 3.0], [0.4, 1.2, -7.0]],
        };
        let inv = m.invert().unwrap();
        let p = inv.apply(m.apply([3.5, -2.25]));
        assert!((p[0] - 3.5).abs() < 1e-12 && (p[1] + 2.25).abs() < 1e-12);
    }

    #[test]
    fn box_whole_frame_is_identity() {
        let img = RgbImage::from_fn(8, 8, |x, y| [(x * 30) as u8, (y * 30) as u8, 9]);
        let f = Face {
            bbox: [0.0, 0.0, 8.0, 8.0],
            landmarks: [[0.0; 2]; 5],
            score: 1.0,
        };
        let out = crop_face(&img, &f, CropSpec::Box { scale: 1.0 }, 8, 8).unwrap();
        assert_eq!(out, img);
    }

    #[test]
    fn outside_frame_is_black() {
        let img = RgbImage::from_fn(4, 4, |_, _| [200, 200, 200]);
        let f = Face {
            bbox: [100.0, 100.0, 104.0, 104.0],
            landmarks: [[0.0; 2]; 5],
            score: 1.0,
        };
        let out = crop_face(&img, &f, CropSpec::Box { scale: 1.0 }, 4, 4).unwrap();
        assert!(out.data.iter().all(|&v| v == 0));
    }

    #[test]
    fn bilinear_blends_with_black_at_border() {
        let img = RgbImage::from_fn(2, 1, |_, _| [100, 100, 100]);
        assert_eq!(sample_bilinear_black(&img, -0.5, 0.0), [50.0; 3]);
        assert_eq!(sample_bilinear_black(&img, 0.5, 0.0), [100.0; 3]);
        assert_eq!(sample_bilinear_black(&img, f64::NAN, 0.0), [0.0; 3]);
    }
}
