//! Face verification: 5-landmark alignment and a face-embedding network run through tract.
//!
//! Model: dlib's `dlib_face_recognition_resnet_model_v1` (Davis King; a 29-layer ResNet
//! trained with a metric loss on ~3 M faces; 99.38 % on LFW as published), in the TF.js
//! port of face-api.js as shipped by npm `@vladmandic/face-api@1.7.15`
//! (`model/face_recognition_model.bin` + its weights manifest), written as ONNX by
//! `xtask/faceapi_recognition_to_onnx.py` at set-up (`assets/dlib_face_resnet.onnx`, sha256
//! [`MODEL_SHA256`]).
//!
//! Input convention ([`FaceEmbedder::embed`] applies it): a 150×150 face aligned to
//! [`DLIB_TEMPLATE`] by [`align_face`], **RGB**, each value `(v - mean) / 255` with the
//! per-channel `mean` [`RGB_MEAN`], NCHW `[1, 3, 150, 150]`. Output: 128 values,
//! L2-normalised here; compare two with [`similarity`] (cosine; 1 = same direction).
//!
//! Alignment: the least-squares similarity transform (rotation, uniform scale,
//! translation; no reflection, no shear) from the detector's 5 landmarks to the template
//! (Umeyama 1991, in 2-D the closed form of a complex-number least squares), then a
//! bilinear warp. Coordinates are pixel indices (pixel `(i, j)` has its centre at
//! `x = i, y = j`, as dlib's and OpenCV's warps assume); samples outside the frame read
//! as black.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{Rgb, RgbImage};
use tract_onnx::prelude::*;

use crate::detect::Detection;

/// sha256 of `assets/dlib_face_resnet.onnx` as `cargo xtask assets` writes it.
pub const MODEL_SHA256: &str = "f586b445d9bed0af319d6a1ec3cdad918955ed6469907c18aa1310db889d0ada";

/// Side of the aligned face the network takes, in pixels.
pub const INPUT_SIZE: u32 = 150;

/// Values per embedding.
pub const EMBEDDING_DIM: usize = 128;

/// Per-channel means (R, G, B, 0–255 scale) subtracted before dividing by 255, as
/// face-api.js's `FaceRecognitionNet` does.
pub const RGB_MEAN: [f32; 3] = [122.782, 117.001, 104.298];

/// Where the left eye, right eye, nose tip, left and right mouth corners (as a
/// [`Detection`] gives them) land in the 150×150 aligned face: dlib's face chip
/// (`get_face_chip_details(det, 150, 0.25)`, the chip its recognition model was trained
/// on), in the points of dlib's mean face — eye centres = means of points 36–41 and
/// 42–47, nose tip = point 30, mouth corners = points 48 and 54 — placed as dlib places
/// them, `(0.25 + p) / 1.5 * 150`.
pub const DLIB_TEMPLATE: [[f32; 2]; 5] = [
    [47.5492, 46.5990],
    [100.4761, 46.5990],
    [74.0127, 76.5625],
    [50.4149, 103.0233],
    [97.6104, 103.0233],
];

/// Everything that can go wrong while aligning, loading or running the embedder.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot read the face-embedding model {path} — run `cargo xtask assets` to fetch it")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("face-embedding model {path}: sha256 {found} is not the pinned {expected} — delete the file and run `cargo xtask assets` to convert it again")]
    Sha256 {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error("cannot load the face-embedding model {path} into tract: {detail} — run `cargo xtask assets` to convert it again")]
    Load { path: PathBuf, detail: String },
    #[error("face-embedding model {path}: output has {found} values, expected {expected} — the file is not the pinned dlib ResNet; run `cargo xtask assets`")]
    Output {
        path: PathBuf,
        found: usize,
        expected: usize,
    },
    #[error("face-embedding model {path} failed: {detail}")]
    Run { path: PathBuf, detail: String },
    #[error("aligned face is {width}x{height}; the embedder takes {INPUT_SIZE}x{INPUT_SIZE} — make it with align_face")]
    Size { width: u32, height: u32 },
    #[error("cannot align the face: landmarks {landmarks:?}: {reason} — use a detection with 5 distinct, finite landmarks")]
    Landmarks {
        landmarks: Vec<[f32; 2]>,
        reason: &'static str,
    },
}

/// A 2-D similarity transform `p -> s R p + t`, stored as `x' = a x - b y + tx`,
/// `y' = b x + a y + ty` (`a = s cos θ`, `b = s sin θ`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    /// The least-squares similarity mapping `src[i]` onto `dst[i]` (Umeyama's estimator
    /// without reflection): minimises `Σ |dst[i] - T(src[i])|²`. Needs at least 2 points,
    /// all finite, `src` not all at one place.
    pub fn estimate(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Result<Similarity, EmbedError> {
        let bad = |reason| EmbedError::Landmarks {
            landmarks: src.to_vec(),
            reason,
        };
        if src.len() != dst.len() || src.len() < 2 {
            return Err(bad("need at least 2 points, as many as the template has"));
        }
        if src.iter().chain(dst).flatten().any(|v| !v.is_finite()) {
            return Err(bad("not all finite"));
        }
        let n = src.len() as f64;
        let mean = |pts: &[[f32; 2]]| {
            let (sx, sy) = pts.iter().fold((0.0, 0.0), |(x, y), p| {
                (x + f64::from(p[0]), y + f64::from(p[1]))
            });
            (sx / n, sy / n)
        };
        let (mx, my) = mean(src);
        let (nx, ny) = mean(dst);
        // As complex numbers: c = Σ conj(x_i) y_i / Σ |x_i|², x, y centred.
        let (mut re, mut im, mut norm) = (0.0, 0.0, 0.0);
        for (p, q) in src.iter().zip(dst) {
            let (x, y) = (f64::from(p[0]) - mx, f64::from(p[1]) - my);
            let (u, v) = (f64::from(q[0]) - nx, f64::from(q[1]) - ny);
            re += x * u + y * v;
            im += x * v - y * u;
            norm += x * x + y * y;
        }
        if norm <= 1e-12 * n {
            return Err(bad("all at one place"));
        }
        let (a, b) = (re / norm, im / norm);
        Ok(Similarity {
            a,
            b,
            tx: nx - (a * mx - b * my),
            ty: ny - (b * mx + a * my),
        })
    }

    /// `T(p)`.
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    /// Uniform scale `s`.
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    /// Rotation angle `θ` in radians.
    pub fn angle(&self) -> f64 {
        self.b.atan2(self.a)
    }

    /// `T⁻¹`, or `None` for a zero scale.
    pub fn inverse(&self) -> Option<Similarity> {
        let d = self.a * self.a + self.b * self.b;
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let (a, b) = (self.a / d, -self.b / d);
        Some(Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }
}

/// The bilinear sample of `img` at `(x, y)` (pixel centres at integer coordinates);
/// neighbours outside the image count as black.
fn sample(img: &RgbImage, x: f64, y: f64) -> [f64; 3] {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let mut out = [0.0; 3];
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let (px, py) = (x0 + dx, y0 + dy);
            let wgt = wx * wy;
            if wgt == 0.0 || px < 0 || py < 0 || px >= w || py >= h {
                continue;
            }
            let Rgb(c) = *img.get_pixel(px as u32, py as u32);
            for k in 0..3 {
                out[k] += wgt * f64::from(c[k]);
            }
        }
    }
    out
}

/// Warps `image` by the similarity that takes `landmarks` (left eye, right eye, nose,
/// left mouth corner, right mouth corner, in `image`'s pixels — a [`Detection`]'s
/// `landmarks`) onto [`DLIB_TEMPLATE`]: the 150×150 aligned face [`FaceEmbedder::embed`]
/// takes.
pub fn align_face(image: &RgbImage, landmarks: &[[f32; 2]; 5]) -> Result<RgbImage, EmbedError> {
    let t = Similarity::estimate(landmarks, &DLIB_TEMPLATE)?;
    let inv = t.inverse().ok_or(EmbedError::Landmarks {
        landmarks: landmarks.to_vec(),
        reason: "the transform has zero scale",
    })?;
    Ok(warp(image, &inv, INPUT_SIZE, INPUT_SIZE))
}

/// Output pixel `(u, v)` takes the bilinear sample of `image` at `inv((u, v))`.
pub fn warp(image: &RgbImage, inv: &Similarity, width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |u, v| {
        let [x, y] = inv.apply([f64::from(u), f64::from(v)]);
        let c = sample(image, x, y);
        Rgb(c.map(|v| v.round().clamp(0.0, 255.0) as u8))
    })
}

/// Cosine similarity of two embeddings in `[-1, 1]` (0 when either is all zeros or
/// their lengths differ).
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

/// The network input for an aligned face: NCHW `[1, 3, 150, 150]`, RGB,
/// `(v - RGB_MEAN[c]) / 255`.
pub fn input_tensor(aligned: &RgbImage) -> Result<Tensor, EmbedError> {
    let (w, h) = aligned.dimensions();
    if (w, h) != (INPUT_SIZE, INPUT_SIZE) {
        return Err(EmbedError::Size {
            width: w,
            height: h,
        });
    }
    let n = INPUT_SIZE as usize;
    let mut data = vec![0f32; 3 * n * n];
    for (x, y, Rgb(c)) in aligned.enumerate_pixels() {
        let i = y as usize * n + x as usize;
        for k in 0..3 {
            data[k * n * n + i] = (f32::from(c[k]) - RGB_MEAN[k]) / 255.0;
        }
    }
    Tensor::from_shape(&[1, 3, n, n], &data).map_err(|e| EmbedError::Run {
        path: PathBuf::new(),
        detail: format!("{e:#}"),
    })
}

/// The dlib ResNet in tract, typed and optimised for `[1, 3, 150, 150]` at load time.
#[derive(Debug)]
pub struct FaceEmbedder {
    path: PathBuf,
    plan: Arc<TypedRunnableModel>,
}

impl FaceEmbedder {
    /// Loads `assets/dlib_face_resnet.onnx` (checked against [`MODEL_SHA256`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, EmbedError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| EmbedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_onnx_bytes(path, &bytes)
    }

    /// Loads the model from the bytes of the ONNX file (checked against
    /// [`MODEL_SHA256`]); `name` only labels errors.
    pub fn from_onnx_bytes(name: impl Into<PathBuf>, bytes: &[u8]) -> Result<Self, EmbedError> {
        let path = name.into();
        let found = fas_core::bundle::sha256_hex(bytes);
        if found != MODEL_SHA256 {
            return Err(EmbedError::Sha256 {
                path,
                found,
                expected: MODEL_SHA256,
            });
        }
        let n = INPUT_SIZE as usize;
        let load_err = |e: TractError| EmbedError::Load {
            path: path.clone(),
            detail: format!("{e:#}"),
        };
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, n, n]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(load_err)?;
        let embedder = FaceEmbedder { path, plan };
        // A model that gives the wrong number of values fails here, not at the door.
        embedder.embed(&RgbImage::new(INPUT_SIZE, INPUT_SIZE))?;
        Ok(embedder)
    }

    /// The file (or label) the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The L2-normalised embedding of an aligned 150×150 RGB face (from [`align_face`]).
    pub fn embed(&self, aligned: &RgbImage) -> Result<Vec<f32>, EmbedError> {
        let input = input_tensor(aligned)?;
        let run_err = |e: TractError| EmbedError::Run {
            path: self.path.clone(),
            detail: format!("{e:#}"),
        };
        let out = self.plan.run(tvec!(input.into())).map_err(run_err)?;
        let view = out[0].to_plain_array_view::<f32>().map_err(run_err)?;
        let mut v: Vec<f32> = view.iter().copied().collect();
        if v.len() != EMBEDDING_DIM {
            return Err(EmbedError::Output {
                path: self.path.clone(),
                found: v.len(),
                expected: EMBEDDING_DIM,
            });
        }
        let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return Err(EmbedError::Run {
                path: self.path.clone(),
                detail: format!("embedding has norm {norm}"),
            });
        }
        for x in &mut v {
            *x = (f64::from(*x) / norm) as f32;
        }
        Ok(v)
    }

    /// Aligns the face `det` found in `frame` and embeds it.
    pub fn embed_face(&self, frame: &RgbImage, det: &Detection) -> Result<Vec<f32>, EmbedError> {
        self.embed(&align_face(frame, &det.landmarks)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_maps_onto_itself() {
        let t = Similarity::estimate(&DLIB_TEMPLATE, &DLIB_TEMPLATE).unwrap();
        assert!((t.a - 1.0).abs() < 1e-9 && t.b.abs() < 1e-9, "{t:?}");
        assert!(t.tx.abs() < 1e-6 && t.ty.abs() < 1e-6, "{t:?}");
    }

    #[test]
    fn degenerate_landmarks_are_refused() {
        let same = [[10.0, 10.0]; 5];
        let e = Similarity::estimate(&same, &DLIB_TEMPLATE).unwrap_err();
        assert!(e.to_string().contains("one place"), "{e}");
        let mut nan = DLIB_TEMPLATE;
        nan[2][0] = f32::NAN;
        assert!(align_face(&RgbImage::new(4, 4), &nan).is_err());
    }

    #[test]
    fn identity_warp_copies_pixels() {
        let img = RgbImage::from_fn(8, 6, |x, y| Rgb([x as u8 * 10, y as u8 * 20, 7]));
        let id = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        assert_eq!(warp(&img, &id, 8, 6), img);
        // Half a pixel to the right: the mean of two neighbours; past the edge: black.
        let half = Similarity { tx: 0.5, ..id };
        let w = warp(&img, &half, 8, 6);
        assert_eq!(w.get_pixel(2, 1).0, [25, 20, 7]);
        assert_eq!(w.get_pixel(7, 1).0[2], 4); // 7 * 0.5 rounded
    }

    #[test]
    fn cosine_similarity() {
        assert!((similarity(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(similarity(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert!((similarity(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-6);
        assert_eq!(similarity(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(similarity(&[1.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn wrong_size_is_refused() {
        let e = input_tensor(&RgbImage::new(100, 112)).unwrap_err();
        assert!(e.to_string().contains("100x112"), "{e}");
        assert!(e.to_string().contains("150x150"), "{e}");
    }
}
