//! Decoding of RetinaFace regressions against their prior boxes
//! (biubug6/Pytorch_Retinaface, `utils/box_utils.py`: `decode`, `decode_landm`).
//!
//! All functions work in normalised input coordinates (`[0, 1]` across the input);
//! [`to_pixels`] maps to frame pixels.

use super::priors::Prior;

/// Decodes one box regression `[dx, dy, dw, dh]` into `[x1, y1, x2, y2]`:
/// centre = prior centre + d·variance[0]·prior size, size = prior size·exp(d·variance[1]).
pub fn decode_box(loc: [f32; 4], prior: &Prior, variance: [f32; 2]) -> [f32; 4] {
    let cx = prior.cx + loc[0] * variance[0] * prior.w;
    let cy = prior.cy + loc[1] * variance[0] * prior.h;
    // exp overflows to inf for absurd regressions; the clamp keeps boxes finite.
    let w = prior.w * (loc[2] * variance[1]).clamp(-30.0, 30.0).exp();
    let h = prior.h * (loc[3] * variance[1]).clamp(-30.0, 30.0).exp();
    [cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h]
}

/// Decodes the 10 landmark regressions (5 × `[dx, dy]`) of one prior into points:
/// point = prior centre + d·variance[0]·prior size.
pub fn decode_landmarks(pre: &[f32; 10], prior: &Prior, variance: [f32; 2]) -> [[f32; 2]; 5] {
    let mut out = [[0.0; 2]; 5];
    for (k, p) in out.iter_mut().enumerate() {
        p[0] = prior.cx + pre[2 * k] * variance[0] * prior.w;
        p[1] = prior.cy + pre[2 * k + 1] * variance[0] * prior.h;
    }
    out
}

/// Maps a normalised box to frame pixels: `x * sx`, `y * sy`, where `(sx, sy)` is the
/// frame size (the input was a scaled copy of the frame, so scaling by the frame size
/// undoes both the normalisation and the resize).
pub fn to_pixels(bbox: [f32; 4], sx: f32, sy: f32) -> [f32; 4] {
    [bbox[0] * sx, bbox[1] * sy, bbox[2] * sx, bbox[3] * sy]
}

/// Maps normalised landmarks to frame pixels, as [`to_pixels`].
pub fn landmarks_to_pixels(points: [[f32; 2]; 5], sx: f32, sy: f32) -> [[f32; 2]; 5] {
    points.map(|[x, y]| [x * sx, y * sy])
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAR: [f32; 2] = [0.1, 0.2];
    const P: Prior = Prior {
        cx: 0.5,
        cy: 0.25,
        w: 0.2,
        h: 0.1,
    };

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn zero_regression_gives_the_prior() {
        let b = decode_box([0.0; 4], &P, VAR);
        assert!(close(&b, &[0.4, 0.2, 0.6, 0.3]), "{b:?}");
        let l = decode_landmarks(&[0.0; 10], &P, VAR);
        assert!(l.iter().all(|p| close(p, &[0.5, 0.25])));
    }

    #[test]
    fn known_answer() {
        // dx = 1 moves the centre by 0.1 * 0.2; dw = ln(2)/0.2 doubles the width.
        let b = decode_box([1.0, -2.0, 2f32.ln() / 0.2, 0.0], &P, VAR);
        let (cx, cy) = (0.5 + 0.02, 0.25 - 0.02);
        assert!(
            close(&b, &[cx - 0.2, cy - 0.05, cx + 0.2, cy + 0.05]),
            "{b:?}"
        );
        let mut pre = [0.0; 10];
        pre[2] = 1.0;
        pre[9] = -1.0;
        let l = decode_landmarks(&pre, &P, VAR);
        assert!(
            close(&l[1], &[0.52, 0.25]) && close(&l[4], &[0.5, 0.24]),
            "{l:?}"
        );
    }

    #[test]
    fn huge_regressions_stay_finite() {
        let b = decode_box([0.0, 0.0, 1e6, f32::MAX], &P, VAR);
        assert!(b.iter().all(|v| v.is_finite()), "{b:?}");
    }

    #[test]
    fn pixels_scale_per_axis() {
        assert_eq!(
            to_pixels([0.5, 0.25, 1.0, 1.0], 640.0, 480.0),
            [320.0, 120.0, 640.0, 480.0]
        );
        let l = landmarks_to_pixels([[0.5, 0.5]; 5], 10.0, 20.0);
        assert_eq!(l[3], [5.0, 10.0]);
    }
}
