//! A landmark-fitted face depth prior: a generic 3D face posed by the 5 detector
//! landmarks and rendered as an 8-bit depth map, for depth supervision on datasets that
//! ship no depth (OULU-NPU, CASIA-FASD, …).
//!
//! This is a **coarse prior**, not a reconstruction. The depth maps used by the papers
//! (PRNet or a fitted 3DMM) need a licensed morphable model that is not available here;
//! this model only knows where the face is, how it is rolled and yawed and where the
//! nose is. It gives the depth head a face-shaped target (a rounded face with a nose
//! ridge) where live faces are, which is what the depth-supervised recipes ask of it:
//! live ≠ flat.
//!
//! # The model
//!
//! Landmarks are in crop pixels (fas-core's convention: pixel `(i, j)` has its centre at
//! `(i, j)`), in the RetinaFace order: left eye, right eye, nose tip, left mouth corner,
//! right mouth corner. From them:
//!
//! * the **face frame**: `ex` the unit vector from the left to the right eye (its angle is
//!   the in-plane roll), `ey` perpendicular to it pointing from the eyes to the mouth;
//!   `d` the inter-ocular distance, `h` the eye–mouth distance along `ey`;
//! * the **pitch** `θ` (positive: chin up) from the nose's height `t` between the eye
//!   line (0) and the mouth line (1). A frontal face has its nose at `t₀`, the ArcFace
//!   template's 0.495. A nose tip that stands `p` in front of the plane of the eyes and
//!   mouth rises `p·sin θ` against that plane under a pitch `θ`, while the eye–mouth
//!   distance shrinks to `h = H·cos θ`, so `t = t₀ − p·sin θ / h`:
//!   `sin θ = (t₀ − t)·h / p`. `θ` is clamped to ±[`MAX_PITCH_DEG`];
//! * the **yaw** `ψ` from the nose's sideways offset `δ` (along `ex`) from the eye–mouth
//!   midline at the nose's height. The nose tip moves `p·sin ψ / cos θ` sideways against
//!   that midline under a yaw `ψ` (after the pitch), while the eyes' distance shrinks to
//!   `d = D·cos ψ`; with `p = 0.5·D` this gives `tan ψ = δ·cos θ / (0.5·d)`. `ψ` is
//!   clamped to ±40°: beyond that the landmarks of a frontal-face detector are
//!   unreliable, and the ellipsoid's cheek would outrank the nose as the nearest point.
//!
//!   `p` depends on `ψ` (through `D = d / cos ψ`) and `ψ` on `θ`, so the two are solved
//!   together by a fixed-point iteration, which converges in a few steps at these angles.
//!
//! The 3D face, in a frame with `X` along `ex`, `Y` along `ey` and `Z` towards the camera,
//! centred on the head:
//!
//! * a **head ellipsoid** with semi-axes `a = 1.05·D` (the bizygomatic breadth of an
//!   adult face is ≈ 2.1× its interpupillary distance, ≈ 135 mm vs 63 mm),
//!   `b = 1.3·h` and `c = 0.8·a` (a face is shallower than it is wide), its centre
//!   `0.35·h` below the eyes: the face from hairline to chin is ≈ 2.6× the eye–mouth
//!   distance, ≈ 0.95·h of it above the eyes and ≈ 0.65·h below the mouth;
//! * the eyes and mouth on the plane `Z = 0.9·c` (just behind the ellipsoid's front,
//!   where eye sockets and lips sit);
//! * a **nose ridge** from the nasion (at eye height, `0.3·p` in front of that plane) to
//!   the tip (`p = 0.5·D` in front of it, ≈ 30 mm for a 63 mm interpupillary distance):
//!   a Gaussian ridge of lateral σ = 0.18·d added to the ellipsoid, whose height rises
//!   linearly from the nasion's to the tip's so both points sit at their 3D depth.
//!
//! The face is pitched by `θ` about its horizontal axis, then yawed by `ψ` about the
//! vertical one, and projected orthographically (a face at a camera's usual distance is
//! well within orthography's error at this coarseness), so that its eyes, mouth and nose
//! land on the landmarks. Landmarks made by projecting this model are fitted back to the
//! pose they were made with (a test checks it).
//!
//! # The map
//!
//! The same encoding as SynthFAS's true depth (`fas_core::synthfas`), so the loader reads
//! either unchanged: a single-channel 8-bit PNG of the crop's size, `0` outside the face
//! and `30 + 225·z / z_max` inside it, `z` the height in front of the head's centre plane
//! (clamped to ≥ 0) and `z_max` the model's nearest point — for |ψ| ≤ 40° the nose tip, so
//! the tip is 255 and the face's rim is 30 whatever the face's size.

use image::GrayImage;

/// Depth level of the face's farthest visible point; the background is 0. As SynthFAS.
pub const FACE_FLOOR: u8 = 30;
/// Eyes closer than this (in pixels) do not describe a face.
pub const MIN_EYE_DISTANCE: f64 = 1.0;
/// Accepted range of the eye–mouth distance over the inter-ocular distance (frontal
/// faces ≈ 1.15; yaw raises it, pitch lowers it).
pub const PROPORTION_RANGE: (f64, f64) = (0.25, 4.0);
/// Largest yaw the model is posed with, in degrees.
pub const MAX_YAW_DEG: f64 = 40.0;
/// Largest pitch the model is posed with, in degrees. Beyond it the nose's height says
/// more about the detector's landmark noise than about the pose.
pub const MAX_PITCH_DEG: f64 = 30.0;

/// Head half-width over the (unforeshortened) inter-ocular distance.
const HALF_WIDTH: f64 = 1.05;
/// Head half-height over the eye–mouth distance.
const HALF_HEIGHT: f64 = 1.3;
/// Head centre below the eyes, over the eye–mouth distance.
const CENTRE_BELOW_EYES: f64 = 0.35;
/// Head depth semi-axis over its half-width.
const DEPTH_RATIO: f64 = 0.8;
/// The eyes' and mouth's plane, over the depth semi-axis.
const LANDMARK_PLANE: f64 = 0.9;
/// Nose tip in front of the landmark plane, over the inter-ocular distance.
const NOSE_PROTRUSION: f64 = 0.5;
/// Nasion in front of the landmark plane, over the nose tip's protrusion.
const NASION_PROTRUSION: f64 = 0.3;
/// Lateral σ of the nose ridge, over the (projected) inter-ocular distance.
const NOSE_SIGMA: f64 = 0.18;
/// Fixed-point iterations solving yaw and pitch together.
const POSE_ITERATIONS: usize = 12;

/// Where a frontal face's nose tip lies between the eye line (0) and the mouth line (1):
/// the ArcFace template's, ≈ 0.495.
pub fn frontal_nose_position() -> f64 {
    let t = fas_core::preprocess::ARCFACE_TEMPLATE_112;
    let eyes = (t[0][1] + t[1][1]) / 2.0;
    let mouth = (t[3][1] + t[4][1]) / 2.0;
    (t[2][1] - eyes) / (mouth - eyes)
}

const NAMES: [&str; 5] = [
    "left eye",
    "right eye",
    "nose",
    "left mouth corner",
    "right mouth corner",
];

/// Why no depth prior can be fitted; every case names the input at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DepthPriorError {
    #[error("depth prior: crop size {width}×{height}: both sides must be at least 1 pixel")]
    EmptyCrop { width: u32, height: u32 },
    #[error(
        "depth prior: landmark {index} ({name}) is not finite ({x}, {y}): the detection is \
         broken — drop this face"
    )]
    NonFinite {
        index: usize,
        name: &'static str,
        x: f64,
        y: f64,
    },
    #[error(
        "depth prior: the eyes are {distance:.3} px apart (at least {MIN_EYE_DISTANCE} px \
         needed): the landmarks do not describe a face"
    )]
    EyesCoincide { distance: f64 },
    #[error(
        "depth prior: the mouth is not below the eyes ({eye_mouth:.2} px along the face's \
         downward axis): the landmarks are mirrored or not in the order left eye, right eye, \
         nose, left mouth corner, right mouth corner"
    )]
    MouthNotBelowEyes { eye_mouth: f64 },
    #[error(
        "depth prior: eye–mouth distance / inter-ocular distance = {ratio:.3}, outside \
         [{}, {}]: not a plausible face (a frontal face is ≈ 1.15)",
        PROPORTION_RANGE.0,
        PROPORTION_RANGE.1
    )]
    Proportions { ratio: f64 },
    #[error(
        "depth prior: the nose is at {position:.3} of the way from the eye line to the \
         mouth line; it must lie strictly between them"
    )]
    NoseOutside { position: f64 },
}

/// A generic face posed by 5 landmarks (see the module documentation), in the pixel
/// coordinates the landmarks were given in.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceModel {
    /// Projected head centre.
    centre: [f64; 2],
    /// Unit vectors: eye line (left → right) and its perpendicular towards the mouth.
    ex: [f64; 2],
    ey: [f64; 2],
    /// `Q = R·diag(a⁻², b⁻², c⁻²)·Rᵀ`: the posed ellipsoid in camera coordinates
    /// (`x` along `ex`, `y` along `ey`, `z` towards the camera), `R` = yaw · pitch.
    q: [[f64; 3]; 3],
    /// Yaw and pitch, radians.
    yaw: f64,
    pitch: f64,
    /// Nose ridge endpoints (image) and their heights above the ellipsoid.
    nasion: [f64; 2],
    tip: [f64; 2],
    nasion_height: f64,
    tip_height: f64,
    nose_sigma: f64,
    /// Depth of the nearest point, the normaliser.
    z_max: f64,
}

fn sub(p: [f64; 2], q: [f64; 2]) -> [f64; 2] {
    [p[0] - q[0], p[1] - q[1]]
}

fn dot(p: [f64; 2], q: [f64; 2]) -> f64 {
    p[0] * q[0] + p[1] * q[1]
}

fn axpy(p: [f64; 2], k: f64, v: [f64; 2]) -> [f64; 2] {
    [p[0] + k * v[0], p[1] + k * v[1]]
}

impl FaceModel {
    /// Fits the model to `landmarks` (left eye, right eye, nose tip, left mouth corner,
    /// right mouth corner; pixel coordinates). Errors on landmarks that do not describe
    /// an upright-enough face rather than rendering a meaningless map.
    pub fn fit(landmarks: &[[f64; 2]; 5]) -> Result<Self, DepthPriorError> {
        if let Some(index) = landmarks
            .iter()
            .position(|p| !(p[0].is_finite() && p[1].is_finite()))
        {
            let [x, y] = landmarks[index];
            return Err(DepthPriorError::NonFinite {
                index,
                name: NAMES[index],
                x,
                y,
            });
        }
        let [le, re, nose, lm, rm] = *landmarks;
        let eye_vec = sub(re, le);
        let d = dot(eye_vec, eye_vec).sqrt();
        if !(d >= MIN_EYE_DISTANCE && d.is_finite()) {
            return Err(DepthPriorError::EyesCoincide { distance: d });
        }
        let ex = [eye_vec[0] / d, eye_vec[1] / d];
        let ey = [-ex[1], ex[0]];
        let eyes = [(le[0] + re[0]) / 2.0, (le[1] + re[1]) / 2.0];
        let mouth = [(lm[0] + rm[0]) / 2.0, (lm[1] + rm[1]) / 2.0];
        let to_mouth = sub(mouth, eyes);
        let h = dot(to_mouth, ey);
        if h <= 0.0 {
            return Err(DepthPriorError::MouthNotBelowEyes { eye_mouth: h });
        }
        let ratio = h / d;
        if !(PROPORTION_RANGE.0..=PROPORTION_RANGE.1).contains(&ratio) {
            return Err(DepthPriorError::Proportions { ratio });
        }
        let position = dot(sub(nose, eyes), ey) / h;
        if !(position > 0.0 && position < 1.0) {
            return Err(DepthPriorError::NoseOutside { position });
        }

        // Pitch from the nose's height, yaw from its offset against the eye–mouth
        // midline at that height; solved together (see the module documentation).
        let midline = axpy(eyes, position, to_mouth);
        let offset = dot(sub(nose, midline), ex);
        let (max_yaw, max_pitch) = (MAX_YAW_DEG.to_radians(), MAX_PITCH_DEG.to_radians());
        let t0 = frontal_nose_position();
        let (mut psi, mut theta) = (0.0f64, 0.0f64);
        for _ in 0..POSE_ITERATIONS {
            let p = NOSE_PROTRUSION * d / psi.cos();
            theta = ((t0 - position) * h / p)
                .clamp(-1.0, 1.0)
                .asin()
                .clamp(-max_pitch, max_pitch);
            psi = (offset * theta.cos() / (NOSE_PROTRUSION * d))
                .atan()
                .clamp(-max_yaw, max_yaw);
        }
        let (sp, cp) = psi.sin_cos();
        let (st, ct) = theta.sin_cos();
        // Model → camera rotation, yaw after pitch.
        let r = [
            [cp, sp * st, sp * ct],
            [0.0, ct, -st],
            [-sp, cp * st, cp * ct],
        ];

        let iod = d / cp; // unforeshortened inter-ocular distance D
        let eye_mouth = h / ct; // unforeshortened eye–mouth distance H
        let a = HALF_WIDTH * iod;
        let b = HALF_HEIGHT * eye_mouth;
        let c = DEPTH_RATIO * a;
        let plane = LANDMARK_PLANE * c;
        let p = NOSE_PROTRUSION * iod;
        let above = CENTRE_BELOW_EYES * eye_mouth; // the eyes above the head's centre
        let project = |m: [f64; 3]| -> [f64; 3] {
            std::array::from_fn(|i| r[i][0] * m[0] + r[i][1] * m[1] + r[i][2] * m[2])
        };
        // The eye midpoint (0, -above, plane) lands on `eyes`: the head's centre projects
        // there minus the eye midpoint's image offset from it.
        let eye_mid = project([0.0, -above, plane]);
        let centre = axpy(axpy(eyes, -eye_mid[1], ey), -eye_mid[0], ex);
        let nasion3 = project([0.0, -above, plane + NASION_PROTRUSION * p]);
        let nasion = axpy(
            axpy(eyes, nasion3[0] - eye_mid[0], ex),
            nasion3[1] - eye_mid[1],
            ey,
        );
        let inv = [1.0 / (a * a), 1.0 / (b * b), 1.0 / (c * c)];
        let q = std::array::from_fn(|i| {
            std::array::from_fn(|j| (0..3).map(|k| r[i][k] * inv[k] * r[j][k]).sum())
        });
        let mut model = FaceModel {
            centre,
            ex,
            ey,
            q,
            yaw: psi,
            pitch: theta,
            nasion,
            tip: nose,
            nasion_height: 0.0,
            tip_height: 0.0,
            nose_sigma: NOSE_SIGMA * d,
            z_max: 1.0,
        };
        // 3D depths of the nose's ends minus the ellipsoid's surface there: the ridge's
        // heights above the head.
        let surface = |q: [f64; 2]| model.ellipsoid_depth(q);
        let (Some(at_tip), Some(at_nasion)) = (surface(nose), surface(nasion)) else {
            // Inside the eye–mouth band the ellipsoid always covers the midline; only a
            // pathological pose/offset combination can leave the nose outside it.
            return Err(DepthPriorError::NoseOutside { position });
        };
        let tip_y = t0 * eye_mouth - above; // the tip's height in the model frame
        let tip_z = project([0.0, tip_y, plane + p])[2];
        model.tip_height = (tip_z - at_tip).max(0.0);
        model.nasion_height = (nasion3[2] - at_nasion).max(0.0);
        // The posed ellipsoid's apex: the largest z on its surface is √(rᵀ diag(a², b²,
        // c²) r), r the camera's z row of R.
        let apex =
            (a * a * r[2][0] * r[2][0] + b * b * r[2][1] * r[2][1] + c * c * r[2][2] * r[2][2])
                .sqrt();
        model.z_max = tip_z.max(apex);
        Ok(model)
    }

    /// The in-plane roll, radians: the angle of the eye line (left → right) from the
    /// image's x axis, positive clockwise on screen (y points down).
    pub fn roll(&self) -> f64 {
        self.ex[1].atan2(self.ex[0])
    }

    /// The estimated yaw, radians, positive when the nose is turned towards the right
    /// eye's side (+x for an upright face); within ±[`MAX_YAW_DEG`].
    pub fn yaw(&self) -> f64 {
        self.yaw
    }

    /// The estimated pitch, radians, positive when the chin is raised (the nose tip sits
    /// higher between the eyes and the mouth than on a frontal face); within
    /// ±[`MAX_PITCH_DEG`].
    pub fn pitch(&self) -> f64 {
        self.pitch
    }

    /// Face coordinates `(x', y)` of image point `q`: along the eye line and down the
    /// face, from the projected head centre.
    fn local(&self, q: [f64; 2]) -> (f64, f64) {
        let r = sub(q, self.centre);
        (dot(r, self.ex), dot(r, self.ey))
    }

    /// Depth (towards the camera, from the head's centre plane) of the yawed ellipsoid's
    /// visible surface at image point `q`; `None` outside its silhouette.
    fn ellipsoid_depth(&self, q: [f64; 2]) -> Option<f64> {
        let (x, y) = self.local(q);
        let m = &self.q;
        // The ray (x, y, z) meets the ellipsoid vᵀ Q v = 1 where
        // m22 z² + 2 (m02 x + m12 y) z + (m00 x² + 2 m01 x y + m11 y² − 1) = 0; the
        // visible surface is the root nearer the camera.
        let half_b = m[0][2] * x + m[1][2] * y;
        let c0 = m[0][0] * x * x + 2.0 * m[0][1] * x * y + m[1][1] * y * y - 1.0;
        let disc = half_b * half_b - m[2][2] * c0;
        (disc >= 0.0).then(|| (-half_b + disc.sqrt()) / m[2][2])
    }

    /// Height of the nose ridge above the ellipsoid at `q`.
    fn nose(&self, q: [f64; 2]) -> f64 {
        let axis = sub(self.tip, self.nasion);
        let len2 = dot(axis, axis);
        let t = if len2 > 0.0 {
            (dot(sub(q, self.nasion), axis) / len2).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let foot = axpy(self.nasion, t, axis);
        let r = sub(q, foot);
        let height = self.nasion_height + t * (self.tip_height - self.nasion_height);
        height * (-dot(r, r) / (2.0 * self.nose_sigma * self.nose_sigma)).exp()
    }

    /// Nearness at image point `(x, y)` in `[0, 1]` (1 = the model's nearest point, 0 =
    /// the head's centre plane or behind); `None` outside the face.
    pub fn depth_at(&self, x: f64, y: f64) -> Option<f64> {
        let q = [x, y];
        let z = self.ellipsoid_depth(q)? + self.nose(q);
        Some((z / self.z_max).clamp(0.0, 1.0))
    }

    /// The depth map of a `width`×`height` crop (see the module documentation for the
    /// encoding), sampled at pixel centres.
    pub fn render(&self, width: u32, height: u32) -> Result<GrayImage, DepthPriorError> {
        if width == 0 || height == 0 {
            return Err(DepthPriorError::EmptyCrop { width, height });
        }
        let span = f64::from(255 - FACE_FLOOR);
        Ok(GrayImage::from_fn(width, height, |i, j| {
            let v = self
                .depth_at(f64::from(i), f64::from(j))
                .map_or(0, |z| (f64::from(FACE_FLOOR) + span * z).round() as u8);
            image::Luma([v])
        }))
    }
}

/// The depth prior of a `width`×`height` crop whose face has the 5 `landmarks` (crop
/// pixel coordinates, RetinaFace order): [`FaceModel::fit`] then [`FaceModel::render`].
pub fn depth_prior(
    landmarks: &[[f64; 2]; 5],
    width: u32,
    height: u32,
) -> Result<GrayImage, DepthPriorError> {
    if width == 0 || height == 0 {
        return Err(DepthPriorError::EmptyCrop { width, height });
    }
    FaceModel::fit(landmarks)?.render(width, height)
}

/// `map` as PNG bytes, encoded as SynthFAS encodes its true depth (8-bit grey).
pub fn encode_png(map: &GrayImage) -> Result<Vec<u8>, image::ImageError> {
    let mut buf = Vec::new();
    map.write_with_encoder(image::codecs::png::PngEncoder::new(&mut buf))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fas_core::preprocess::aligned_template;
    use proptest::prelude::*;

    const S: u32 = 256;

    /// The ArcFace template at 256² and 2.7× context (prepare's default crop), made
    /// exactly mirror-symmetric about the crop's central column `(S - 1) / 2`.
    fn frontal() -> [[f64; 2]; 5] {
        let t = aligned_template(S, S, 2.7);
        let cx = f64::from(S - 1) / 2.0;
        let pair = |l: [f64; 2], r: [f64; 2]| {
            let half = ((r[0] - l[0]) / 2.0).abs();
            let y = (l[1] + r[1]) / 2.0;
            ([cx - half, y], [cx + half, y])
        };
        let (le, re) = pair(t[0], t[1]);
        let (lm, rm) = pair(t[3], t[4]);
        [le, re, [cx, t[2][1]], lm, rm]
    }

    fn rotate(p: [f64; 2], centre: [f64; 2], angle: f64) -> [f64; 2] {
        let (s, c) = angle.sin_cos();
        let r = sub(p, centre);
        [
            centre[0] + c * r[0] - s * r[1],
            centre[1] + s * r[0] + c * r[1],
        ]
    }

    fn argmax(map: &GrayImage) -> (u32, u32) {
        let (mut best, mut at) = (0u8, (0, 0));
        for (x, y, p) in map.enumerate_pixels() {
            if p.0[0] > best {
                (best, at) = (p.0[0], (x, y));
            }
        }
        at
    }

    fn face_pixels(map: &GrayImage) -> usize {
        map.pixels().filter(|p| p.0[0] > 0).count()
    }

    #[test]
    fn frontal_face_is_symmetric_with_its_peak_at_the_nose() {
        let lm = frontal();
        let map = depth_prior(&lm, S, S).unwrap();
        assert_eq!(map.dimensions(), (S, S));
        for y in 0..S {
            for x in 0..S {
                let (a, b) = (map.get_pixel(x, y).0[0], map.get_pixel(S - 1 - x, y).0[0]);
                assert!(a.abs_diff(b) <= 1, "({x}, {y}): {a} vs mirrored {b}");
            }
        }
        let (px, py) = argmax(&map);
        let dist = (f64::from(px) - lm[2][0]).hypot(f64::from(py) - lm[2][1]);
        assert!(dist <= 3.0, "peak at ({px}, {py}), nose at {:?}", lm[2]);
        // The tip lies between two pixel columns, half a pixel from the nearest.
        assert!(map.get_pixel(px, py).0[0] >= 253);
        for (x, y) in [(0, 0), (S - 1, 0), (0, S - 1), (S - 1, S - 1)] {
            assert_eq!(map.get_pixel(x, y).0[0], 0, "corner ({x}, {y})");
        }
        // Every landmark is on the face; eyes recessed below the nose, cheeks lower than
        // the eyes' midpoint (a rounded face, not a plateau).
        let at = |p: [f64; 2]| map.get_pixel(p[0].round() as u32, p[1].round() as u32).0[0];
        for p in lm {
            assert!(at(p) >= FACE_FLOOR, "{p:?}: {}", at(p));
        }
        assert!(at(lm[0]) < at(lm[2]) && at(lm[1]) < at(lm[2]));
        let cheek = [lm[0][0] - 0.3 * (lm[1][0] - lm[0][0]), lm[2][1]];
        assert!(at(cheek) >= FACE_FLOOR && at(cheek) < at(lm[0]));
        // The face: the ellipse of semi-axes 1.05 d × 1.3 h, π a b pixels.
        let d = lm[1][0] - lm[0][0];
        let h = lm[3][1] - lm[0][1];
        let expected = std::f64::consts::PI * HALF_WIDTH * d * HALF_HEIGHT * h;
        let got = face_pixels(&map) as f64;
        assert!((got / expected - 1.0).abs() < 0.03, "{got} vs {expected}");
        // No pixel of the face below the floor.
        assert!(map.pixels().all(|p| p.0[0] == 0 || p.0[0] >= FACE_FLOOR));
    }

    #[test]
    fn frontal_fit_has_no_roll_yaw_or_pitch() {
        let m = FaceModel::fit(&frontal()).unwrap();
        assert!(m.roll().abs() < 1e-12 && m.yaw().abs() < 1e-9 && m.pitch().abs() < 1e-9);
        assert!((frontal_nose_position() - 0.495).abs() < 0.001);
    }

    /// The 5 landmarks of the model itself (inter-ocular distance `iod`, eye–mouth
    /// distance `em`, mouth width 0.83·iod as in the ArcFace template) posed by pitch
    /// `theta` then yaw `psi`, projected orthographically, rolled by `roll` and centred
    /// on `at`.
    fn posed(iod: f64, em: f64, psi: f64, theta: f64, roll: f64, at: [f64; 2]) -> [[f64; 2]; 5] {
        let (sp, cp) = psi.sin_cos();
        let (st, ct) = theta.sin_cos();
        let plane = LANDMARK_PLANE * DEPTH_RATIO * HALF_WIDTH * iod;
        let above = CENTRE_BELOW_EYES * em;
        let (w, m) = (iod / 2.0, 0.83 * iod / 2.0);
        let p = NOSE_PROTRUSION * iod;
        let pts = [
            [-w, -above, plane],
            [w, -above, plane],
            [0.0, frontal_nose_position() * em - above, plane + p],
            [-m, em - above, plane],
            [m, em - above, plane],
        ];
        let (sr, cr) = roll.sin_cos();
        pts.map(|[x, y, z]| {
            let u = cp * x + sp * st * y + sp * ct * z;
            let v = ct * y - st * z;
            [at[0] + cr * u - sr * v, at[1] + sr * u + cr * v]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Landmarks made by posing the model are fitted back to that pose, and the
        /// rendered peak (the nose tip) lands on the nose landmark.
        #[test]
        fn posed_model_landmarks_fit_back_to_their_pose(
            psi in -0.6f64..0.6,
            theta in -0.45f64..0.45,
            roll in -0.5f64..0.5,
            iod in 40.0f64..80.0,
            em in 1.0f64..1.3,
        ) {
            let lm = posed(iod, em * iod, psi, theta, roll, [128.0, 120.0]);
            let m = FaceModel::fit(&lm).unwrap();
            prop_assert!((m.yaw() - psi).abs() < 1e-6, "yaw {} vs {psi}", m.yaw());
            prop_assert!((m.pitch() - theta).abs() < 1e-6, "pitch {} vs {theta}", m.pitch());
            prop_assert!((m.roll() - roll).abs() < 1e-9, "roll {} vs {roll}", m.roll());
            // The nose tip is rendered at its 3D depth: Z'' = cos ψ (sin θ Y + cos θ Z).
            let em = em * iod;
            let plane = LANDMARK_PLANE * DEPTH_RATIO * HALF_WIDTH * iod;
            let (y, z) = (
                frontal_nose_position() * em - CENTRE_BELOW_EYES * em,
                plane + NOSE_PROTRUSION * iod,
            );
            let tip_z = psi.cos() * (theta.sin() * y + theta.cos() * z);
            let at_tip = m.depth_at(lm[2][0], lm[2][1]).unwrap() * m.z_max;
            prop_assert!((at_tip - tip_z).abs() < 1e-6 * iod, "{at_tip} vs {tip_z}");
            // Unless the head is turned or bowed far (then a cheek or the brow comes
            // nearest, as on a real face), the map peaks at the nose. Turned and raised
            // together, the ridge sits on the head's slope and the peak slides towards
            // the apex by up to ≈ 0.06 of the eye distance (a grid scan), so the bound
            // scales with the face: pixel rounding + 0.07·iod.
            if theta > -0.1 && psi.abs() < 0.3 {
                let (px, py) = argmax(&m.render(S, S).unwrap());
                let dist = (f64::from(px) - lm[2][0]).hypot(f64::from(py) - lm[2][1]);
                prop_assert!(
                    dist <= 1.0 + 0.07 * iod,
                    "peak at ({px}, {py}), nose at {:?}",
                    lm[2]
                );
                // Every landmark is on the face. (The mouth corners lie just outside the
                // ellipsoid, so a strong pose can show them beside its silhouette.)
                for p in lm {
                    prop_assert!(m.depth_at(p[0], p[1]).is_some(), "{p:?} off the face");
                }
            }
        }

        /// A nose nearer the eye line pitches the face chin-up: the chin comes towards
        /// the camera and the forehead recedes, so the midline's depth below the mouth
        /// gains on its depth above the eyes against the frontal face; a lower nose does
        /// the opposite.
        #[test]
        fn nose_height_sets_the_pitch(shift in 0.05f64..0.2, up in proptest::bool::ANY) {
            let f = frontal();
            let h = f[3][1] - f[0][1];
            let sign = if up { -1.0 } else { 1.0 };
            let mut lm = f;
            lm[2][1] += sign * shift * h;
            let m = FaceModel::fit(&lm).unwrap();
            prop_assert!(m.pitch() * -sign > 0.0, "pitch {}", m.pitch());
            prop_assert!(m.yaw().abs() < 1e-9);
            let cx = f[2][0];
            let chin_minus_brow = |m: &FaceModel| {
                let brow = m.depth_at(cx, f[0][1] - 0.25 * h).unwrap();
                let chin = m.depth_at(cx, f[3][1] + 0.25 * h).unwrap();
                chin - brow
            };
            let frontal_model = FaceModel::fit(&f).unwrap();
            let (posed, flat) = (chin_minus_brow(&m), chin_minus_brow(&frontal_model));
            prop_assert!((posed - flat) * -sign > 0.02, "{posed} vs frontal {flat}");
        }
    }

    #[test]
    fn degenerate_landmarks_are_errors() {
        let ok = frontal();
        let with = |i: usize, p: [f64; 2]| {
            let mut l = ok;
            l[i] = p;
            l
        };
        let err = |l: [[f64; 2]; 5]| depth_prior(&l, S, S).unwrap_err();
        assert!(matches!(
            err(with(3, [f64::NAN, 1.0])),
            DepthPriorError::NonFinite { index: 3, .. }
        ));
        assert!(matches!(
            err(with(1, [ok[0][0], f64::INFINITY])),
            DepthPriorError::NonFinite { index: 1, .. }
        ));
        assert!(matches!(
            err(with(1, ok[0])),
            DepthPriorError::EyesCoincide { .. }
        ));
        // Mouth above the eyes: the face flipped vertically.
        let flipped = ok.map(|[x, y]| [x, 255.0 - y]);
        assert!(matches!(
            err(flipped),
            DepthPriorError::MouthNotBelowEyes { .. }
        ));
        // Left and right swapped (a mirrored labelling): the eye line points left, so the
        // face's "down" points up. (A face rolled 180° keeps its labels and is fine.)
        let swapped = [ok[1], ok[0], ok[2], ok[4], ok[3]];
        assert!(matches!(
            err(swapped),
            DepthPriorError::MouthNotBelowEyes { .. }
        ));
        // The mouth corners on the eye line's height + 1 px: far too flat.
        let flat = [
            ok[0],
            ok[1],
            ok[2],
            [ok[3][0], ok[0][1] + 1.0],
            [ok[4][0], ok[1][1] + 1.0],
        ];
        assert!(matches!(err(flat), DepthPriorError::Proportions { .. }));
        assert!(matches!(
            err(with(2, [ok[2][0], ok[0][1] - 5.0])),
            DepthPriorError::NoseOutside { .. }
        ));
        assert!(matches!(
            depth_prior(&ok, 0, 10).unwrap_err(),
            DepthPriorError::EmptyCrop { .. }
        ));
        let msg = err(with(0, [f64::NAN, 0.0])).to_string();
        assert!(msg.contains("left eye"), "{msg}");
    }

    #[test]
    fn png_round_trips_as_8_bit_grey() {
        let lm = frontal().map(|[x, y]| [x / 4.0, y / 4.0]);
        let map = depth_prior(&lm, 64, 48).unwrap();
        let bytes = encode_png(&map).unwrap();
        let back = image::load_from_memory(&bytes).unwrap();
        assert_eq!(back.color(), image::ColorType::L8);
        assert_eq!(back.to_luma8(), map);
    }

    /// A frontal face scaled by `k` about the crop centre and moved by `shift`.
    fn scaled(k: f64, shift: [f64; 2]) -> [[f64; 2]; 5] {
        let c = f64::from(S - 1) / 2.0;
        frontal().map(|[x, y]| [c + k * (x - c) + shift[0], c + k * (y - c) + shift[1]])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Rolling the landmarks about the crop centre rolls the map: the model's depth at
        /// every rotated point equals the original's, and the rendered maps agree at
        /// sampled face pixels (within interpolation error).
        #[test]
        fn rolling_the_landmarks_rolls_the_map(
            angle in -1.2f64..1.2,
            k in 0.7f64..1.4,
            yaw_px in -8.0f64..8.0,
        ) {
            let mut lm = scaled(k, [0.0, 0.0]);
            lm[2][0] += yaw_px;
            let c = [f64::from(S - 1) / 2.0; 2];
            let rolled = lm.map(|p| rotate(p, c, angle));
            let (m0, m1) = (FaceModel::fit(&lm).unwrap(), FaceModel::fit(&rolled).unwrap());
            prop_assert!((m1.yaw() - m0.yaw()).abs() < 1e-9);
            let droll = (m1.roll() - m0.roll() - angle).rem_euclid(std::f64::consts::TAU);
            prop_assert!(!(1e-9..=std::f64::consts::TAU - 1e-9).contains(&droll));
            for i in 0..40 {
                let q = [40.0 + 4.4 * f64::from(i), 30.0 + 4.9 * f64::from((i * 7) % 40)];
                let (v0, v1) = (m0.depth_at(q[0], q[1]), {
                    let r = rotate(q, c, angle);
                    m1.depth_at(r[0], r[1])
                });
                match (v0, v1) {
                    (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-9, "{q:?}: {a} {b}"),
                    (None, None) => {}
                    // Exactly on the silhouette rim, rounding may decide either way.
                    (a, b) => prop_assert!(
                        a.unwrap_or(0.0) < 1e-3 && b.unwrap_or(0.0) < 1e-3,
                        "{q:?}: {a:?} {b:?}"
                    ),
                }
            }
            // The rendered maps: every rolled-map face pixel whose 3×3 neighbourhood is
            // inside the face matches the original map interpolated at its pre-image.
            let (a, b) = (m0.render(S, S).unwrap(), m1.render(S, S).unwrap());
            let mut compared = 0;
            for y in (2..S - 2).step_by(7) {
                for x in (2..S - 2).step_by(7) {
                    let interior = (0..9).all(|n| b.get_pixel(x + n % 3 - 1, y + n / 3 - 1).0[0] > 0);
                    if !interior {
                        continue;
                    }
                    let p = rotate([f64::from(x), f64::from(y)], c, -angle);
                    let (x0, y0) = (p[0].floor(), p[1].floor());
                    let (fx, fy) = (p[0] - x0, p[1] - y0);
                    let px = |dx: f64, dy: f64| f64::from(a.get_pixel((x0 + dx) as u32, (y0 + dy) as u32).0[0]);
                    let corners = [px(0.0, 0.0), px(1.0, 0.0), px(0.0, 1.0), px(1.0, 1.0)];
                    if corners.contains(&0.0) {
                        continue;
                    }
                    let interp = corners[0] * (1.0 - fx) * (1.0 - fy) + corners[1] * fx * (1.0 - fy)
                        + corners[2] * (1.0 - fx) * fy + corners[3] * fx * fy;
                    let got = f64::from(b.get_pixel(x, y).0[0]);
                    // The steepest slope (the nose's flank) is ≈ 12 levels per pixel.
                    prop_assert!((got - interp).abs() <= 8.0, "({x}, {y}): {got} vs {interp}");
                    compared += 1;
                }
            }
            prop_assert!(compared > 20, "only {compared} points compared");
        }

        /// Scaling the landmarks by k scales the face's area by k².
        #[test]
        fn face_area_scales_quadratically(k in 0.5f64..2.0, dx in -10.0f64..10.0) {
            let base = face_pixels(&depth_prior(&scaled(1.0, [dx, 0.0]), S, S).unwrap()) as f64;
            let area = face_pixels(&depth_prior(&scaled(k, [dx, 0.0]), S, S).unwrap()) as f64;
            let ratio = area / base / (k * k);
            prop_assert!((ratio - 1.0).abs() < 0.05, "k = {k}: area ratio / k² = {ratio}");
        }

        /// A nose moved towards one side yaws the face that way: the peak moves to that
        /// side of the eye–mouth midline.
        #[test]
        fn yawing_the_nose_moves_the_peak_to_its_side(
            frac in 0.08f64..0.3,
            left in proptest::bool::ANY,
            k in 0.8f64..1.5,
        ) {
            let mut lm = scaled(k, [0.0, 0.0]);
            let d = lm[1][0] - lm[0][0];
            let side = if left { -1.0 } else { 1.0 };
            lm[2][0] += side * frac * d;
            let m = FaceModel::fit(&lm).unwrap();
            prop_assert!(m.yaw() * side > 0.0);
            let map = m.render(S, S).unwrap();
            let midline = f64::from(S - 1) / 2.0;
            let (px, _) = argmax(&map);
            prop_assert!((f64::from(px) - midline) * side > 0.0, "peak x {px}");
            // The nose tip now stands out of the face more than its mirror point does.
            let at = |x: f64, y: f64| i32::from(map.get_pixel(x.round() as u32, y.round() as u32).0[0]);
            let (tx, ty) = (lm[2][0], lm[2][1]);
            prop_assert!(at(tx, ty) - at(2.0 * midline - tx, ty) > 8);
        }

        /// Any plausible pose gives a deterministic map whose face pixels are in
        /// [FACE_FLOOR, 255], with 255 reached, background 0 at the corners.
        #[test]
        fn maps_are_deterministic_and_in_range(
            angle in -0.8f64..0.8,
            k in 0.5f64..1.6,
            nose in -0.4f64..0.4,
            mouth in -0.3f64..0.3,
            shift in proptest::array::uniform2(-20.0f64..20.0),
        ) {
            let mut lm = scaled(k, shift);
            let d = lm[1][0] - lm[0][0];
            lm[2][0] += nose * d;
            lm[3][1] += mouth * d;
            lm[4][1] += mouth * d;
            let c = [f64::from(S - 1) / 2.0; 2];
            let lm = lm.map(|p| rotate(p, c, angle));
            let a = depth_prior(&lm, S, S).unwrap();
            let b = depth_prior(&lm, S, S).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert!(a.pixels().all(|p| p.0[0] == 0 || p.0[0] >= FACE_FLOOR));
            prop_assert!(a.pixels().any(|p| p.0[0] >= 250));
            for (x, y) in [(0, 0), (S - 1, 0), (0, S - 1), (S - 1, S - 1)] {
                prop_assert_eq!(a.get_pixel(x, y).0[0], 0);
            }
            let m = FaceModel::fit(&lm).unwrap();
            prop_assert!(m.yaw().abs() <= MAX_YAW_DEG.to_radians() + 1e-12);
        }
    }
}
