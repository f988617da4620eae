//! Seeded training-time augmentation of 8-bit RGB face crops (and their depth maps).
//!
//! An augmentation is drawn once per sample as [`AugmentParams`] from an [`AugmentConfig`]
//! and a 64-bit seed, then applied: first one geometric warp (random resized crop →
//! rotation → horizontal flip, composed into a single inverse map so the image is
//! resampled only once), then colour jitter (brightness → contrast → saturation → hue, in
//! that fixed order). The output has the size of the input; the loader then resizes it to
//! the model's input with fas-core's `resize_bilinear` like any other crop.
//!
//! # Geometry
//! The warp is defined on normalised coordinates (`0..1` across the image), so the same
//! [`AugmentParams`] move a depth map of any resolution exactly like the image, provided
//! it covers the same field of view (as SynthFAS depth maps and prepared crops do).
//! Rotation is a true rotation in the image's pixel space; positive angles turn the
//! content counter-clockwise as displayed. Sampling is bilinear at pixel centres with
//! round-to-nearest, so identity parameters reproduce the input exactly.
//!
//! # Borders
//! Where the warp reaches outside the source (rotation corners), [`Border::Replicate`]
//! (the default) repeats the nearest edge pixel, which avoids the hard black corners a
//! classifier could learn as a cue; [`Border::Constant`] fills with one grey level in
//! the image and with 0 (= no depth, the background convention) in the depth map.

use fas_core::preprocess::RgbImage;
use image::GrayImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What fills the area a rotation uncovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Border {
    /// Repeat the nearest edge pixel.
    Replicate,
    /// This grey level in every channel of the image; 0 in depth maps.
    Constant(u8),
}

/// Ranges of the random augmentations; a field at its "off" value disables that op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Random resized crop: fraction of the source area kept, `[min, max]` with
    /// `0 < min <= max <= 1`. `[1, 1]` (with `crop_ratio` `[1, 1]`) keeps the whole image.
    pub crop_scale: [f32; 2],
    /// Random resized crop: aspect ratio of the crop *relative to the source's*
    /// (1 = same shape), drawn log-uniformly from `[min, max]`.
    pub crop_ratio: [f32; 2],
    /// Rotation drawn uniformly from `[-rotate_deg, rotate_deg]` degrees (0..=180).
    pub rotate_deg: f32,
    /// Fill of uncovered areas.
    pub border: Border,
    /// Brightness factor drawn from `[max(0, 1 - b), 1 + b]`.
    pub brightness: f32,
    /// Contrast factor drawn from `[max(0, 1 - c), 1 + c]` (blend with the mean grey).
    pub contrast: f32,
    /// Saturation factor drawn from `[max(0, 1 - s), 1 + s]` (blend with the pixel's grey).
    pub saturation: f32,
    /// Hue rotation drawn from `[-hue, hue]` turns (0..=0.5).
    pub hue: f32,
    /// Probability of a horizontal flip (0..=1).
    pub hflip: f32,
}

impl Default for AugmentConfig {
    /// Mild augmentation for face anti-spoofing: colour is itself a liveness cue
    /// (print gamut, screen white point), so colour jitter stays small.
    fn default() -> Self {
        Self {
            crop_scale: [0.8, 1.0],
            crop_ratio: [0.9, 1.1],
            rotate_deg: 10.0,
            border: Border::Replicate,
            brightness: 0.2,
            contrast: 0.2,
            saturation: 0.2,
            hue: 0.02,
            hflip: 0.5,
        }
    }
}

/// A field of [`AugmentConfig`] out of range; the message names it and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("augment.{field} is {value}: {fix}")]
pub struct AugmentError {
    pub field: &'static str,
    pub value: String,
    pub fix: &'static str,
}

impl AugmentConfig {
    /// No augmentation: every draw gives [`AugmentParams::identity`].
    pub fn none() -> Self {
        Self {
            crop_scale: [1.0, 1.0],
            crop_ratio: [1.0, 1.0],
            rotate_deg: 0.0,
            border: Border::Replicate,
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            hue: 0.0,
            hflip: 0.0,
        }
    }

    /// True when every draw is the identity (the loader then skips augmentation).
    pub fn is_none(&self) -> bool {
        self.crop_scale == [1.0, 1.0]
            && self.crop_ratio == [1.0, 1.0]
            && self.rotate_deg == 0.0
            && self.brightness == 0.0
            && self.contrast == 0.0
            && self.saturation == 0.0
            && self.hue == 0.0
            && self.hflip == 0.0
    }

    /// Checks every range; the error names the field and how to fix it.
    pub fn validate(&self) -> Result<(), AugmentError> {
        let err = |field, value: String, fix| Err(AugmentError { field, value, fix });
        let [s0, s1] = self.crop_scale;
        if !(s0.is_finite() && s1.is_finite() && s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
            return err(
                "crop_scale",
                format!("{:?}", self.crop_scale),
                "give [min, max] with 0 < min <= max <= 1, e.g. [0.8, 1.0]; [1, 1] disables cropping",
            );
        }
        let [r0, r1] = self.crop_ratio;
        if !(r0.is_finite() && r1.is_finite() && r0 > 0.0 && r0 <= r1) {
            return err(
                "crop_ratio",
                format!("{:?}", self.crop_ratio),
                "give [min, max] with 0 < min <= max, e.g. [0.9, 1.1]; [1, 1] keeps the source shape",
            );
        }
        if !(0.0..=180.0).contains(&self.rotate_deg) {
            return err(
                "rotate_deg",
                self.rotate_deg.to_string(),
                "give the largest rotation in degrees, 0..=180 (0 disables)",
            );
        }
        for (field, v) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return err(
                    field,
                    v.to_string(),
                    "give a jitter strength >= 0 (factor drawn from [1 - v, 1 + v]; 0 disables)",
                );
            }
        }
        if !(0.0..=0.5).contains(&self.hue) {
            return err(
                "hue",
                self.hue.to_string(),
                "give the largest hue rotation in turns, 0..=0.5 (0 disables)",
            );
        }
        if !(0.0..=1.0).contains(&self.hflip) {
            return err(
                "hflip",
                self.hflip.to_string(),
                "give a flip probability in 0..=1",
            );
        }
        Ok(())
    }

    /// Draws the augmentation of one sample. The same `(config, seed)` always gives the
    /// same parameters; each op draws from its own ChaCha8 stream, so disabling one op
    /// does not change the others. Assumes a valid config (see [`Self::validate`]).
    pub fn sample(&self, seed: u64) -> AugmentParams {
        let stream = |k: u64| {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            r.set_stream(k);
            r
        };
        let mut p = AugmentParams::identity();
        p.border = self.border;

        let mut r = stream(1);
        let (ln0, ln1) = (
            f64::from(self.crop_ratio[0]).ln(),
            f64::from(self.crop_ratio[1]).ln(),
        );
        for _ in 0..10 {
            let area = uniform(&mut r, self.crop_scale[0].into(), self.crop_scale[1].into());
            let ratio = uniform(&mut r, ln0, ln1).exp();
            let (w, h) = ((area * ratio).sqrt(), (area / ratio).sqrt());
            let (ux, uy) = (r.random::<f64>(), r.random::<f64>());
            if w <= 1.0 && h <= 1.0 {
                p.crop = [ux * (1.0 - w), uy * (1.0 - h), w, h];
                break;
            }
        }

        let mut r = stream(2);
        let deg = f64::from(self.rotate_deg);
        p.angle_deg = uniform(&mut r, -deg, deg);

        let mut r = stream(3);
        p.flip = r.random::<f64>() < f64::from(self.hflip);

        let mut r = stream(4);
        let factor = |r: &mut ChaCha8Rng, v: f32| {
            let v = f64::from(v);
            uniform(r, (1.0 - v).max(0.0), 1.0 + v) as f32
        };
        p.brightness = factor(&mut r, self.brightness);
        p.contrast = factor(&mut r, self.contrast);
        p.saturation = factor(&mut r, self.saturation);
        let h = f64::from(self.hue);
        p.hue = uniform(&mut r, -h, h) as f32;
        p
    }
}

/// `a + (b - a) * u`, exactly `a` when `a == b`.
fn uniform(r: &mut ChaCha8Rng, a: f64, b: f64) -> f64 {
    let u = r.random::<f64>();
    if a == b {
        a
    } else {
        a + (b - a) * u
    }
}

/// One drawn augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugmentParams {
    /// Crop `[x, y, width, height]` as fractions of the source's width and height.
    pub crop: [f64; 4],
    /// Rotation in degrees, positive = counter-clockwise as displayed.
    pub angle_deg: f64,
    /// Mirror left-right.
    pub flip: bool,
    pub border: Border,
    /// Multiplicative factors (1 = unchanged).
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    /// Hue rotation in turns (0 = unchanged).
    pub hue: f32,
}

impl AugmentParams {
    /// Parameters that change nothing.
    pub fn identity() -> Self {
        Self {
            crop: [0.0, 0.0, 1.0, 1.0],
            angle_deg: 0.0,
            flip: false,
            border: Border::Replicate,
            brightness: 1.0,
            contrast: 1.0,
            saturation: 1.0,
            hue: 0.0,
        }
    }

    pub fn is_geometric_identity(&self) -> bool {
        self.crop == [0.0, 0.0, 1.0, 1.0] && self.angle_deg == 0.0 && !self.flip
    }

    pub fn is_color_identity(&self) -> bool {
        self.brightness == 1.0 && self.contrast == 1.0 && self.saturation == 1.0 && self.hue == 0.0
    }

    /// The augmented image: same size as `img`.
    pub fn apply_rgb(&self, img: &RgbImage) -> RgbImage {
        if img.is_empty() {
            return img.clone();
        }
        let warped = if self.is_geometric_identity() {
            img.clone()
        } else {
            let fill = match self.border {
                Border::Replicate => None,
                Border::Constant(v) => Some(f64::from(v)),
            };
            let map = self.inverse_map(img.width, img.height);
            RgbImage {
                width: img.width,
                height: img.height,
                data: warp::<3>(&img.data, img.width, img.height, &map, fill),
            }
        };
        if self.is_color_identity() {
            warped
        } else {
            self.jitter(warped)
        }
    }

    /// The depth map moved exactly like the image (geometry only): same size as `depth`.
    /// `aspect` is the image's width / height, which fixes what a true rotation is.
    pub fn apply_depth(&self, depth: &GrayImage, aspect: f64) -> GrayImage {
        let (w, h) = depth.dimensions();
        if self.is_geometric_identity() || w == 0 || h == 0 {
            return depth.clone();
        }
        let fill = match self.border {
            Border::Replicate => None,
            Border::Constant(_) => Some(0.0),
        };
        let map = self.normalized_map(aspect).to_pixels(w, h);
        let data = warp::<1>(depth.as_raw(), w, h, &map, fill);
        GrayImage::from_raw(w, h, data).expect("warp keeps the size")
    }

    /// Both at once: the image and, when given, its depth map.
    pub fn apply(
        &self,
        img: &RgbImage,
        depth: Option<&GrayImage>,
    ) -> (RgbImage, Option<GrayImage>) {
        let aspect = f64::from(img.width.max(1)) / f64::from(img.height.max(1));
        (
            self.apply_rgb(img),
            depth.map(|d| self.apply_depth(d, aspect)),
        )
    }

    fn inverse_map(&self, w: u32, h: u32) -> Map {
        self.normalized_map(f64::from(w) / f64::from(h))
            .to_pixels(w, h)
    }

    /// Output normalised coordinates → source normalised coordinates, as an affine map.
    /// Content order: crop, then rotate about the crop centre, then flip.
    fn normalized_map(&self, aspect: f64) -> Map {
        let [cx, cy, cw, ch] = self.crop;
        let (s, c) = self.angle_deg.to_radians().sin_cos();
        // u' = flip ? 1 - u : u;  px = (u' - 0.5) * cw * aspect;  py = (v - 0.5) * ch
        // (units of source height); rotate; back to normalised source coordinates.
        let fu = if self.flip { -1.0 } else { 1.0 };
        let (ax, ay) = (fu * cw * aspect, ch);
        // s_x = cx + cw/2 + (c*px - s*py) / aspect ; s_y = cy + ch/2 + s*px + c*py
        // with px = ax*(u - 0.5), py = ay*(v - 0.5).
        let m = [[c * ax / aspect, -s * ay / aspect], [s * ax, c * ay]];
        Map {
            m,
            t: [
                cx + cw / 2.0 - 0.5 * (m[0][0] + m[0][1]),
                cy + ch / 2.0 - 0.5 * (m[1][0] + m[1][1]),
            ],
        }
    }

    fn jitter(&self, img: RgbImage) -> RgbImage {
        let mut px: Vec<f32> = img.data.iter().map(|&v| f32::from(v)).collect();
        let clamp = |v: f32| v.clamp(0.0, 255.0);
        let grey = |p: &[f32]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
        if self.brightness != 1.0 {
            for v in &mut px {
                *v = clamp(*v * self.brightness);
            }
        }
        if self.contrast != 1.0 {
            let n = (px.len() / 3).max(1) as f64;
            let mean = (px.chunks_exact(3).map(|p| f64::from(grey(p))).sum::<f64>() / n) as f32;
            for v in &mut px {
                *v = clamp(mean + self.contrast * (*v - mean));
            }
        }
        if self.saturation != 1.0 {
            for p in px.chunks_exact_mut(3) {
                let g = grey(p);
                for v in p {
                    *v = clamp(g + self.saturation * (*v - g));
                }
            }
        }
        if self.hue != 0.0 {
            let r = hue_rotation(f64::from(self.hue));
            for p in px.chunks_exact_mut(3) {
                let q = [p[0], p[1], p[2]];
                for (o, row) in p.iter_mut().zip(&r) {
                    *o = clamp(row[0] * q[0] + row[1] * q[1] + row[2] * q[2]);
                }
            }
        }
        RgbImage {
            width: img.width,
            height: img.height,
            data: px.into_iter().map(round_u8).collect(),
        }
    }
}

/// Rotation by `turns` of a full turn about the grey axis (1, 1, 1) of RGB space: grey
/// stays grey, and a third of a turn sends pure red to pure green, like an HSV hue shift
/// of 120°. A linear map, so no colour-space round trip is involved.
fn hue_rotation(turns: f64) -> [[f32; 3]; 3] {
    let (s, c) = (turns * std::f64::consts::TAU).sin_cos();
    let a = (1.0 - c) / 3.0;
    let b = s / 3f64.sqrt();
    let (d, p, m) = ((c + a) as f32, (a + b) as f32, (a - b) as f32);
    [[d, m, p], [p, d, m], [m, p, d]]
}

fn round_u8(v: f32) -> u8 {
    (v + 0.5).floor().clamp(0.0, 255.0) as u8
}

/// Affine map `p ↦ m·p + t`.
#[derive(Debug, Clone, Copy)]
struct Map {
    m: [[f64; 2]; 2],
    t: [f64; 2],
}

impl Map {
    /// The same map on pixel-centre coordinates of a `w`×`h` image (output and source
    /// have the same size): pixel `x` is at normalised `(x + 0.5) / w`.
    fn to_pixels(self, w: u32, h: u32) -> Map {
        let (w, h) = (f64::from(w), f64::from(h));
        let m = [
            [self.m[0][0], self.m[0][1] * w / h],
            [self.m[1][0] * h / w, self.m[1][1]],
        ];
        // src_px = (m·((x+0.5)/w, (y+0.5)/h) + t) * (w, h) - 0.5
        let t = [
            w * self.t[0] - 0.5 + 0.5 * (m[0][0] + m[0][1]),
            h * self.t[1] - 0.5 + 0.5 * (m[1][0] + m[1][1]),
        ];
        Map { m, t }
    }
}

/// Inverse-mapped bilinear warp of a `C`-channel u8 image onto itself in size.
/// `fill`: `None` replicates the edge, `Some(v)` treats outside pixels as `v`.
fn warp<const C: usize>(src: &[u8], w: u32, h: u32, map: &Map, fill: Option<f64>) -> Vec<u8> {
    let (wi, hi) = (i64::from(w), i64::from(h));
    let mut out = Vec::with_capacity(src.len());
    let at = |x: i64, y: i64, c: usize| -> f64 {
        if x < 0 || y < 0 || x >= wi || y >= hi {
            match fill {
                Some(v) => return v,
                None => {
                    let (x, y) = (x.clamp(0, wi - 1), y.clamp(0, hi - 1));
                    return f64::from(src[(y * wi + x) as usize * C + c]);
                }
            }
        }
        f64::from(src[(y * wi + x) as usize * C + c])
    };
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (f64::from(x), f64::from(y));
            let sx = map.m[0][0] * fx + map.m[0][1] * fy + map.t[0];
            let sy = map.m[1][0] * fx + map.m[1][1] * fy + map.t[1];
            // Far outside: one fill/edge value (also keeps the i64 casts in range).
            let (sx, sy) = (
                sx.clamp(-2.0, f64::from(w) + 1.0),
                sy.clamp(-2.0, f64::from(h) + 1.0),
            );
            let (x0, y0) = (sx.floor(), sy.floor());
            let (ax, ay) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            for c in 0..C {
                let top = at(x0, y0, c) * (1.0 - ax) + at(x0 + 1, y0, c) * ax;
                let bot = at(x0, y0 + 1, c) * (1.0 - ax) + at(x0 + 1, y0 + 1, c) * ax;
                let v = top * (1.0 - ay) + bot * ay;
                out.push((v + 0.5).floor().clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
