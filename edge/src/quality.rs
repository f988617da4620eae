//! Quality gates: is a detected face good enough to be scored at all? A face that fails
//! here gives no liveness score (the policy sees "no usable face", never a grant).
//!
//! Gates, cheapest first: geometry (finite numbers), visibility (box inside the frame),
//! size (inter-ocular distance and box side), pose from the 5 landmarks (roll, yaw,
//! pitch), exposure (mean luma and clipped fraction in the box), sharpness (variance of
//! the Laplacian of the grey face, at a fixed working resolution).

use fas_core::preprocess::RgbImage;
use fas_infer::detect::Detection;

/// Side (px) of the working resolution for sharpness: larger face regions are
/// area-averaged down to it so the measure means the same at any distance.
pub const SHARPNESS_SIDE: usize = 112;

/// Nose-tip depth in front of the eyes, in units of half the inter-ocular distance
/// (≈ 2.2 cm / 3.2 cm on an adult face): turns the nose's sideways offset into yaw.
const NOSE_DEPTH_PER_HALF_IOD: f32 = 0.7;
/// Nose-tip depth in front of the eye–mouth plane, in units of the eye-to-mouth height
/// (≈ 2.5 cm / 7 cm): turns the nose's vertical offset into pitch.
const NOSE_DEPTH_PER_FACE_HEIGHT: f32 = 0.35;
/// Where RetinaFace puts the nose tip of a frontal face, as a fraction of the way from the
/// eye line to the mouth-corner line: the median over the 29 faces of the 1927 Solvay
/// group photo (`assets/solvay_1927.png`) is 0.55 (the ArcFace template has 0.49;
/// portraits shot from slightly above reach 0.70).
const FRONTAL_NOSE_RATIO: f32 = 0.55;

/// Limits of the quality gates.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    /// Minimum distance between the eye centres, px.
    pub min_eye_distance: f32,
    /// Minimum of the box's width and height, px.
    pub min_box_side: f32,
    /// Minimum fraction of the box area inside the frame, in `(0, 1]`.
    pub min_visible_fraction: f32,
    /// Maximum |roll| (tilt of the eye line), degrees.
    pub max_roll_deg: f32,
    /// Maximum |yaw| (head turned left/right), degrees; estimated from the landmarks.
    pub max_yaw_deg: f32,
    /// Maximum |pitch| (head up/down), degrees; a rough estimate from the landmarks.
    pub max_pitch_deg: f32,
    /// Allowed mean luma (BT.601, 0–255) of the face box.
    pub min_mean_luma: f32,
    pub max_mean_luma: f32,
    /// Maximum fraction of face-box pixels at luma ≤ 5 or ≥ 250.
    pub max_clipped_fraction: f32,
    /// Minimum variance of the Laplacian of the grey face at [`SHARPNESS_SIDE`] px.
    /// For scale (default 15): sharp portraits measure 870–1870, SynthFAS live faces 23
    /// and up (its webcam domain is soft), `grace_hopper.jpg` after a radius-8 box blur 8.
    pub min_sharpness: f32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            min_eye_distance: 24.0,
            min_box_side: 48.0,
            min_visible_fraction: 0.9,
            max_roll_deg: 25.0,
            max_yaw_deg: 35.0,
            max_pitch_deg: 40.0,
            min_mean_luma: 40.0,
            max_mean_luma: 220.0,
            max_clipped_fraction: 0.25,
            min_sharpness: 15.0,
        }
    }
}

/// A limit that is out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid quality configuration: quality.{field} = {value}: {reason}")]
pub struct QualityConfigError {
    pub field: &'static str,
    pub value: f32,
    pub reason: &'static str,
}

impl QualityConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), QualityConfigError> {
        let check = |field, value: f32, ok: bool, reason| {
            if ok && value.is_finite() {
                Ok(())
            } else {
                Err(QualityConfigError {
                    field,
                    value,
                    reason,
                })
            }
        };
        let c = self;
        check(
            "min_eye_distance",
            c.min_eye_distance,
            c.min_eye_distance >= 0.0,
            "must be >= 0 px",
        )?;
        check(
            "min_box_side",
            c.min_box_side,
            c.min_box_side >= 0.0,
            "must be >= 0 px",
        )?;
        check(
            "min_visible_fraction",
            c.min_visible_fraction,
            c.min_visible_fraction > 0.0 && c.min_visible_fraction <= 1.0,
            "must lie in (0, 1]",
        )?;
        for (field, v) in [
            ("max_roll_deg", c.max_roll_deg),
            ("max_yaw_deg", c.max_yaw_deg),
            ("max_pitch_deg", c.max_pitch_deg),
        ] {
            check(
                field,
                v,
                (0.0..=90.0).contains(&v),
                "must lie in [0, 90] degrees",
            )?;
        }
        check(
            "min_mean_luma",
            c.min_mean_luma,
            (0.0..=255.0).contains(&c.min_mean_luma),
            "must lie in [0, 255]",
        )?;
        check(
            "max_mean_luma",
            c.max_mean_luma,
            (0.0..=255.0).contains(&c.max_mean_luma) && c.max_mean_luma > c.min_mean_luma,
            "must lie in [0, 255] and exceed min_mean_luma",
        )?;
        check(
            "max_clipped_fraction",
            c.max_clipped_fraction,
            (0.0..=1.0).contains(&c.max_clipped_fraction),
            "must lie in [0, 1]",
        )?;
        check(
            "min_sharpness",
            c.min_sharpness,
            c.min_sharpness >= 0.0,
            "must be >= 0",
        )?;
        Ok(())
    }
}

/// Which gate a face failed, with the measured value and the limit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("face geometry is not finite (detector output {0})")]
    NonFinite(&'static str),
    #[error("face outside the frame: {:.0} % of the box visible < {:.0} %", .visible * 100.0, .min * 100.0)]
    OutsideFrame { visible: f32, min: f32 },
    #[error("face too small: {measured:.0} px between eyes < {min:.0}")]
    EyesTooClose { measured: f32, min: f32 },
    #[error("face too small: box side {measured:.0} px < {min:.0}")]
    BoxTooSmall { measured: f32, min: f32 },
    #[error("head tilted: roll {measured:.0}° beyond ±{max:.0}°")]
    Roll { measured: f32, max: f32 },
    #[error("head turned: yaw {measured:.0}° beyond ±{max:.0}°")]
    Yaw { measured: f32, max: f32 },
    #[error("head raised or lowered: pitch {measured:.0}° beyond ±{max:.0}°")]
    Pitch { measured: f32, max: f32 },
    #[error("face too dark: mean luma {measured:.0} < {min:.0}")]
    TooDark { measured: f32, min: f32 },
    #[error("face too bright: mean luma {measured:.0} > {max:.0}")]
    TooBright { measured: f32, max: f32 },
    #[error("face badly exposed: {:.0} % of pixels clipped > {:.0} %", .measured * 100.0, .max * 100.0)]
    Clipped { measured: f32, max: f32 },
    #[error("face blurred: sharpness {measured:.1} < {min:.1} (variance of the Laplacian)")]
    Blurred { measured: f32, min: f32 },
}

impl Rejection {
    /// Short name of the gate (`size`, `pose`, `exposure`, …) for counters and overlays.
    pub fn gate(&self) -> &'static str {
        match self {
            Rejection::NonFinite(_) => "geometry",
            Rejection::OutsideFrame { .. } => "visibility",
            Rejection::EyesTooClose { .. } | Rejection::BoxTooSmall { .. } => "size",
            Rejection::Roll { .. } | Rejection::Yaw { .. } | Rejection::Pitch { .. } => "pose",
            Rejection::TooDark { .. } | Rejection::TooBright { .. } | Rejection::Clipped { .. } => {
                "exposure"
            }
            Rejection::Blurred { .. } => "sharpness",
        }
    }
}

/// Head pose estimated from the 5 landmarks, degrees. Roll is positive when the right eye
/// (in the image) is lower; yaw is positive when the nose is right of the eye midpoint;
/// pitch is positive when the nose is nearer the mouth than in a frontal face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    pub roll: f32,
    pub yaw: f32,
    pub pitch: f32,
}

/// Distance between the two eye landmarks, px.
pub fn eye_distance(face: &Detection) -> f32 {
    let [le, re, ..] = face.landmarks;
    (re[0] - le[0]).hypot(re[1] - le[1])
}

/// The pose from the landmarks (finite for finite landmarks, zero for degenerate ones).
pub fn pose(face: &Detection) -> Pose {
    let [le, re, nose, lm, rm] = face.landmarks;
    let roll = (re[1] - le[1]).atan2(re[0] - le[0]);
    // Undo the roll around the eye midpoint.
    let (s, c) = (-roll).sin_cos();
    let eye_mid = [(le[0] + re[0]) / 2.0, (le[1] + re[1]) / 2.0];
    let derolled = |p: [f32; 2]| {
        let (x, y) = (p[0] - eye_mid[0], p[1] - eye_mid[1]);
        [c * x - s * y, s * x + c * y]
    };
    let n = derolled(nose);
    let mouth = derolled([(lm[0] + rm[0]) / 2.0, (lm[1] + rm[1]) / 2.0]);
    let half_iod = eye_distance(face) / 2.0;
    let yaw = if half_iod > 1e-3 {
        (n[0] / half_iod / NOSE_DEPTH_PER_HALF_IOD).atan()
    } else {
        0.0
    };
    let pitch = if mouth[1] > 1e-3 {
        ((n[1] / mouth[1] - FRONTAL_NOSE_RATIO) / NOSE_DEPTH_PER_FACE_HEIGHT).atan()
    } else {
        0.0
    };
    Pose {
        roll: roll.to_degrees(),
        yaw: yaw.to_degrees(),
        pitch: pitch.to_degrees(),
    }
}

/// Integer pixel rectangle `[x0, x1) × [y0, y1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

impl Rect {
    fn width(&self) -> usize {
        self.x1 - self.x0
    }
    fn height(&self) -> usize {
        self.y1 - self.y0
    }
}

/// The part of `[x1, y1, x2, y2]` inside a `w x h` frame, `None` when empty.
fn clip(b: [f32; 4], w: u32, h: u32) -> Option<Rect> {
    let cx = |v: f32| v.round().clamp(0.0, w as f32) as usize;
    let cy = |v: f32| v.round().clamp(0.0, h as f32) as usize;
    let r = Rect {
        x0: cx(b[0]),
        y0: cy(b[1]),
        x1: cx(b[2]),
        y1: cy(b[3]),
    };
    (r.x1 > r.x0 && r.y1 > r.y0).then_some(r)
}

fn luma(p: &[u8]) -> u8 {
    ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2]) + 128) >> 8) as u8
}

/// Mean luma and fraction of clipped pixels in `r`.
fn exposure(frame: &RgbImage, r: Rect) -> (f32, f32) {
    let w = frame.width as usize;
    let (mut sum, mut clipped) = (0u64, 0u64);
    for y in r.y0..r.y1 {
        let row = &frame.data[(y * w + r.x0) * 3..(y * w + r.x1) * 3];
        for p in row.chunks_exact(3) {
            let l = luma(p);
            sum += u64::from(l);
            clipped += u64::from(!(6..250).contains(&l));
        }
    }
    let n = (r.width() * r.height()) as f64;
    ((sum as f64 / n) as f32, (clipped as f64 / n) as f32)
}

/// Variance of the 4-neighbour Laplacian of the grey region `r`, area-averaged down so
/// that its long side is at most [`SHARPNESS_SIDE`].
fn sharpness(frame: &RgbImage, r: Rect) -> f32 {
    let (rw, rh) = (r.width(), r.height());
    let scale = (rw.max(rh) as f32 / SHARPNESS_SIDE as f32).max(1.0);
    let ow = ((rw as f32 / scale).round() as usize).clamp(1, rw);
    let oh = ((rh as f32 / scale).round() as usize).clamp(1, rh);
    if ow < 3 || oh < 3 {
        return 0.0;
    }
    let fw = frame.width as usize;
    let mut grey = vec![0f32; ow * oh];
    for oy in 0..oh {
        let (sy0, sy1) = (oy * rh / oh, ((oy + 1) * rh / oh).max(oy * rh / oh + 1));
        for ox in 0..ow {
            let (sx0, sx1) = (ox * rw / ow, ((ox + 1) * rw / ow).max(ox * rw / ow + 1));
            let mut acc = 0u32;
            for y in sy0..sy1 {
                let base = ((r.y0 + y) * fw + r.x0) * 3;
                for x in sx0..sx1 {
                    acc += u32::from(luma(&frame.data[base + x * 3..base + x * 3 + 3]));
                }
            }
            grey[oy * ow + ox] = acc as f32 / ((sy1 - sy0) * (sx1 - sx0)) as f32;
        }
    }
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for y in 1..oh - 1 {
        for x in 1..ow - 1 {
            let i = y * ow + x;
            let lap = grey[i - 1] + grey[i + 1] + grey[i - ow] + grey[i + ow] - 4.0 * grey[i];
            sum += f64::from(lap);
            sq += f64::from(lap) * f64::from(lap);
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sq / n - mean * mean).max(0.0) as f32
}

/// Everything [`assess`] measures, for logs and tuning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurements {
    pub visible_fraction: f32,
    pub eye_distance: f32,
    pub box_side: f32,
    pub pose: Pose,
    pub mean_luma: f32,
    pub clipped_fraction: f32,
    pub sharpness: f32,
}

/// Measures `face` in `frame` without judging it. `None` when the geometry is not finite
/// or the box does not overlap the frame.
pub fn measure(frame: &RgbImage, face: &Detection) -> Option<Measurements> {
    let finite = face
        .bbox
        .iter()
        .chain(face.landmarks.iter().flatten())
        .all(|v| v.is_finite());
    if !finite || frame.validate().is_err() {
        return None;
    }
    let r = clip(face.bbox, frame.width, frame.height)?;
    let area = f64::from(face.width()) * f64::from(face.height());
    let visible = if area > 0.0 {
        ((r.width() * r.height()) as f64 / area).min(1.0) as f32
    } else {
        0.0
    };
    // Sharpness on the inner 80 % of the box: the box edge runs through hair and
    // background, whose texture says nothing about the face.
    let (bw, bh) = (face.width(), face.height());
    let inner = [
        face.bbox[0] + 0.1 * bw,
        face.bbox[1] + 0.1 * bh,
        face.bbox[2] - 0.1 * bw,
        face.bbox[3] - 0.1 * bh,
    ];
    let (mean_luma, clipped_fraction) = exposure(frame, r);
    Some(Measurements {
        visible_fraction: visible,
        eye_distance: eye_distance(face),
        box_side: bw.min(bh),
        pose: pose(face),
        mean_luma,
        clipped_fraction,
        sharpness: clip(inner, frame.width, frame.height).map_or(0.0, |i| sharpness(frame, i)),
    })
}

/// Passes `face` or says which gate it fails (the first, cheapest first), with the
/// measured value and the limit. Never panics, whatever the box (outside the frame,
/// inverted, not finite).
pub fn assess(frame: &RgbImage, face: &Detection, cfg: &QualityConfig) -> Result<(), Rejection> {
    let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
    if !finite(&face.bbox) {
        return Err(Rejection::NonFinite("box"));
    }
    if !finite(face.landmarks.as_flattened()) {
        return Err(Rejection::NonFinite("landmarks"));
    }
    let visible_min = cfg.min_visible_fraction;
    let Some(m) = measure(frame, face) else {
        return Err(Rejection::OutsideFrame {
            visible: 0.0,
            min: visible_min,
        });
    };
    if m.visible_fraction < visible_min {
        return Err(Rejection::OutsideFrame {
            visible: m.visible_fraction,
            min: visible_min,
        });
    }
    if m.eye_distance < cfg.min_eye_distance {
        return Err(Rejection::EyesTooClose {
            measured: m.eye_distance,
            min: cfg.min_eye_distance,
        });
    }
    if m.box_side < cfg.min_box_side {
        return Err(Rejection::BoxTooSmall {
            measured: m.box_side,
            min: cfg.min_box_side,
        });
    }
    let p = m.pose;
    if p.roll.abs() > cfg.max_roll_deg {
        return Err(Rejection::Roll {
            measured: p.roll,
            max: cfg.max_roll_deg,
        });
    }
    if p.yaw.abs() > cfg.max_yaw_deg {
        return Err(Rejection::Yaw {
            measured: p.yaw,
            max: cfg.max_yaw_deg,
        });
    }
    if p.pitch.abs() > cfg.max_pitch_deg {
        return Err(Rejection::Pitch {
            measured: p.pitch,
            max: cfg.max_pitch_deg,
        });
    }
    if m.mean_luma < cfg.min_mean_luma {
        return Err(Rejection::TooDark {
            measured: m.mean_luma,
            min: cfg.min_mean_luma,
        });
    }
    if m.mean_luma > cfg.max_mean_luma {
        return Err(Rejection::TooBright {
            measured: m.mean_luma,
            max: cfg.max_mean_luma,
        });
    }
    if m.clipped_fraction > cfg.max_clipped_fraction {
        return Err(Rejection::Clipped {
            measured: m.clipped_fraction,
            max: cfg.max_clipped_fraction,
        });
    }
    if m.sharpness < cfg.min_sharpness {
        return Err(Rejection::Blurred {
            measured: m.sharpness,
            min: cfg.min_sharpness,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fas_core::preprocess::ARCFACE_TEMPLATE_112;
    use proptest::prelude::*;

    /// The ArcFace template scaled by `s` and moved by `(dx, dy)`, with a box around it.
    fn template_face(s: f32, dx: f32, dy: f32) -> Detection {
        let mut landmarks = [[0.0; 2]; 5];
        for (l, t) in landmarks.iter_mut().zip(ARCFACE_TEMPLATE_112) {
            *l = [t[0] as f32 * s + dx, t[1] as f32 * s + dy];
        }
        Detection {
            bbox: [dx, dy, 112.0 * s + dx, 112.0 * s + dy],
            landmarks,
            score: 0.99,
        }
    }

    fn rotate(face: &Detection, deg: f32) -> Detection {
        let c = face.center();
        let (s, co) = deg.to_radians().sin_cos();
        let mut f = *face;
        for l in &mut f.landmarks {
            let (x, y) = (l[0] - c[0], l[1] - c[1]);
            *l = [co * x - s * y + c[0], s * x + co * y + c[1]];
        }
        f
    }

    #[test]
    fn template_is_frontal_and_roll_follows_rotation() {
        let f = template_face(2.0, 10.0, 20.0);
        let p0 = pose(&f);
        // The template's nose sits at 0.495 of the eye-to-mouth height.
        let t = ARCFACE_TEMPLATE_112;
        let ratio = ((t[2][1] - (t[0][1] + t[1][1]) / 2.0)
            / ((t[3][1] + t[4][1]) / 2.0 - (t[0][1] + t[1][1]) / 2.0)) as f32;
        let pitch = ((ratio - FRONTAL_NOSE_RATIO) / NOSE_DEPTH_PER_FACE_HEIGHT)
            .atan()
            .to_degrees();
        assert!(p0.roll.abs() < 0.5 && p0.yaw.abs() < 1.0, "{p0:?}");
        assert!((p0.pitch - pitch).abs() < 0.5, "{p0:?} vs {pitch}");
        for deg in [-40.0f32, -10.0, 15.0, 30.0] {
            let p = pose(&rotate(&f, deg));
            assert!((p.roll - p0.roll - deg).abs() < 0.01, "{deg}: {p:?}");
            assert!((p.yaw - p0.yaw).abs() < 0.01, "{deg}: {p:?}");
            assert!((p.pitch - p0.pitch).abs() < 0.01, "{deg}: {p:?}");
        }
    }

    #[test]
    fn nose_offsets_give_yaw_and_pitch() {
        let mut f = template_face(2.0, 0.0, 0.0);
        let iod = eye_distance(&f);
        f.landmarks[2][0] += 0.5 * iod * NOSE_DEPTH_PER_HALF_IOD; // tan(yaw) = 1
        assert!((pose(&f).yaw - 45.0).abs() < 1.5, "{:?}", pose(&f));
        let mut g = template_face(2.0, 0.0, 0.0);
        g.landmarks[2][1] -= 20.0;
        assert!(pose(&g).pitch < pose(&f).pitch - 10.0, "{:?}", pose(&g));
        // Nose at the frontal ratio: no pitch.
        let mut h = template_face(2.0, 0.0, 0.0);
        let eye_y = (h.landmarks[0][1] + h.landmarks[1][1]) / 2.0;
        let mouth_y = (h.landmarks[3][1] + h.landmarks[4][1]) / 2.0;
        h.landmarks[2][1] = eye_y + FRONTAL_NOSE_RATIO * (mouth_y - eye_y);
        assert!(pose(&h).pitch.abs() < 0.5, "{:?}", pose(&h));
    }

    #[test]
    fn degenerate_landmarks_give_finite_pose() {
        let f = Detection {
            bbox: [0.0, 0.0, 10.0, 10.0],
            landmarks: [[5.0, 5.0]; 5],
            score: 1.0,
        };
        let p = pose(&f);
        assert!(p.roll.is_finite() && p.yaw.is_finite() && p.pitch.is_finite());
    }

    #[test]
    fn sharpness_of_flat_and_checkerboard() {
        let flat = RgbImage::from_fn(64, 64, |_, _| [90, 90, 90]);
        let all = Rect {
            x0: 0,
            y0: 0,
            x1: 64,
            y1: 64,
        };
        assert_eq!(sharpness(&flat, all), 0.0);
        let checker = RgbImage::from_fn(
            64,
            64,
            |x, y| if (x + y) % 2 == 0 { [0; 3] } else { [200; 3] },
        );
        // Interior Laplacian is ±800 everywhere: variance 640000.
        assert!((sharpness(&checker, all) - 640_000.0).abs() < 1.0);
    }

    #[test]
    fn exposure_of_known_patches() {
        let img = RgbImage::from_fn(10, 10, |x, _| if x < 5 { [0; 3] } else { [100; 3] });
        let all = Rect {
            x0: 0,
            y0: 0,
            x1: 10,
            y1: 10,
        };
        let (mean, clipped) = exposure(&img, all);
        assert!((mean - 50.0).abs() < 0.01 && (clipped - 0.5).abs() < 1e-6);
    }

    #[test]
    fn config_validation_names_the_field() {
        assert!(QualityConfig::default().validate().is_ok());
        let mut c = QualityConfig {
            max_yaw_deg: 120.0,
            ..QualityConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "max_yaw_deg");
        c = QualityConfig {
            max_mean_luma: 10.0,
            ..QualityConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("quality.max_mean_luma"), "{e}");
        c = QualityConfig {
            min_sharpness: f32::NAN,
            ..QualityConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "min_sharpness");
    }

    #[test]
    fn rejection_messages_say_value_and_limit() {
        let r = Rejection::EyesTooClose {
            measured: 38.2,
            min: 48.0,
        };
        assert_eq!(r.to_string(), "face too small: 38 px between eyes < 48");
        assert_eq!(r.gate(), "size");
        let v = Rejection::OutsideFrame {
            visible: 0.5,
            min: 0.9,
        };
        assert!(v.to_string().contains("50 %"), "{v}");
    }

    proptest! {
        #[test]
        fn assess_never_panics(
            w in 1u32..80,
            h in 1u32..80,
            b in proptest::array::uniform4(-200f32..300.0),
            lm in proptest::array::uniform10(-200f32..300.0),
            nan in 0usize..20,
        ) {
            let frame = RgbImage::from_fn(w, h, |x, y| [(x * 3) as u8, (y * 5) as u8, 77]);
            let mut face = Detection {
                bbox: b,
                landmarks: [[lm[0], lm[1]], [lm[2], lm[3]], [lm[4], lm[5]], [lm[6], lm[7]], [lm[8], lm[9]]],
                score: 0.9,
            };
            if nan < 4 {
                face.bbox[nan] = f32::NAN;
            } else if nan < 14 {
                face.landmarks[(nan - 4) / 2][nan % 2] = f32::INFINITY;
            }
            let cfg = QualityConfig { min_eye_distance: 0.0, min_box_side: 0.0, min_visible_fraction: 0.01, ..QualityConfig::default() };
            let r = assess(&frame, &face, &cfg);
            if nan < 14 {
                let non_finite = matches!(r, Err(Rejection::NonFinite(_)));
                prop_assert!(non_finite, "{:?}", r);
            }
            if b[0] >= w as f32 || b[1] >= h as f32 || b[2] <= 0.0 || b[3] <= 0.0 {
                let outside = matches!(r, Err(Rejection::OutsideFrame { .. }) | Err(Rejection::NonFinite(_)));
                prop_assert!(outside, "{:?}", r);
            }
            if let Some(m) = measure(&frame, &face) {
                prop_assert!((0.0..=1.0).contains(&m.visible_fraction));
                prop_assert!(m.sharpness.is_finite() && m.mean_luma.is_finite());
            }
        }
    }
}
