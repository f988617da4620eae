//! RetinaFace (mobilenet-0.25 backbone, 5 landmarks) run through tract.
//!
//! Model: Deng et al., "RetinaFace: Single-stage Dense Face Localisation in the Wild",
//! CVPR 2020; weights and export of biubug6/Pytorch_Retinaface (`mobilenet0.25`).
//! The ONNX graph takes `input` `[1, 3, H, W]` float, BGR minus `(104, 117, 123)`, no
//! scaling, any H×W, and returns per prior `loc` `[1, N, 4]`, `conf` `[1, N, 2]`
//! (already softmaxed; column 1 is "face") and `landmarks` `[1, N, 10]`.

use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use tract_onnx::prelude::*;

use super::decode::{decode_box, decode_landmarks, landmarks_to_pixels, to_pixels};
use super::nms::nms;
use super::priors::{AnchorConfig, PriorCache};
use super::{DetectError, Detection, FaceDetector, RgbImage};

/// BGR channel means subtracted from the pixel values (0–255 scale).
pub const BGR_MEAN: [f32; 3] = [104.0, 117.0, 123.0];

/// Run-time settings of [`RetinaFace`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetinaFaceConfig {
    /// Frames whose long side exceeds this are downscaled (aspect kept) so that the
    /// long side equals it; smaller frames run at their own size (never upscaled).
    pub max_side: u32,
    /// Minimum face score kept, in `[0, 1]`.
    pub score_threshold: f32,
    /// NMS IoU threshold, in `[0, 1]`.
    pub nms_iou: f32,
    /// Candidates (best first) kept before NMS.
    pub pre_nms_top_k: usize,
    /// Faces kept after NMS.
    pub top_k: usize,
    /// Distinct input sizes whose optimised model (and priors) are kept; each new
    /// size costs one optimisation pass, so a camera with a fixed resolution needs 1.
    pub cached_sizes: usize,
}

impl Default for RetinaFaceConfig {
    fn default() -> Self {
        RetinaFaceConfig {
            max_side: 640,
            score_threshold: 0.5,
            nms_iou: 0.4,
            pre_nms_top_k: 5000,
            top_k: 750,
            cached_sizes: 4,
        }
    }
}

impl RetinaFaceConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), DetectError> {
        let err = DetectError::config;
        if self.max_side == 0 {
            return err("max_side", "0".into(), "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return err(
                "score_threshold",
                self.score_threshold.to_string(),
                "must lie in [0, 1]",
            );
        }
        if !(0.0..=1.0).contains(&self.nms_iou) {
            return err("nms_iou", self.nms_iou.to_string(), "must lie in [0, 1]");
        }
        if self.pre_nms_top_k == 0 {
            return err("pre_nms_top_k", "0".into(), "must be at least 1");
        }
        if self.top_k == 0 {
            return err("top_k", "0".into(), "must be at least 1");
        }
        if self.cached_sizes == 0 {
            return err("cached_sizes", "0".into(), "must be at least 1");
        }
        Ok(())
    }

    /// The input size the model runs at for a `width x height` frame
    /// (see [`RetinaFaceConfig::max_side`]); never zero for a non-empty frame.
    pub fn input_size(&self, width: u32, height: u32) -> (u32, u32) {
        let long = width.max(height);
        if long <= self.max_side {
            return (width, height);
        }
        let s = f64::from(self.max_side) / f64::from(long);
        let scale = |v: u32| ((f64::from(v) * s).round() as u32).clamp(1, self.max_side);
        (scale(width), scale(height))
    }
}

/// The raw model outputs for one frame, flattened per prior: `loc[4 i..4 i + 4]`,
/// `conf[2 i..2 i + 2]`, `landmarks[10 i..10 i + 10]` belong to prior `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutputs {
    /// Input size the model ran at.
    pub width: u32,
    pub height: u32,
    pub loc: Vec<f32>,
    pub conf: Vec<f32>,
    pub landmarks: Vec<f32>,
}

impl RawOutputs {
    /// Number of priors.
    pub fn num_priors(&self) -> usize {
        self.conf.len() / 2
    }
}

/// RetinaFace face detector: the ONNX graph is parsed once; an optimised runnable
/// model (with its execution state) is built per input size and cached.
#[derive(Debug)]
pub struct RetinaFace {
    path: PathBuf,
    model: InferenceModel,
    config: RetinaFaceConfig,
    anchors: AnchorConfig,
    priors: PriorCache,
    /// Most recently used last.
    states: Vec<((u32, u32), TypedSimpleState)>,
}

impl RetinaFace {
    /// Loads the ONNX model at `path` (e.g. `assets/retinaface_mnet025.onnx`).
    pub fn load(path: impl AsRef<Path>, config: RetinaFaceConfig) -> Result<Self, DetectError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| DetectError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_onnx_bytes(path, &bytes, config)
    }

    /// Loads the model from the bytes of an ONNX file (e.g. from a bundle);
    /// `name` only labels errors.
    pub fn from_onnx_bytes(
        name: impl Into<PathBuf>,
        bytes: &[u8],
        config: RetinaFaceConfig,
    ) -> Result<Self, DetectError> {
        config.validate()?;
        let path = name.into();
        let model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(|e| DetectError::Load {
                path: path.clone(),
                detail: format!("{e:#}"),
            })?;
        if model.input_outlets().map_or(0, |o| o.len()) != 1
            || model.output_outlets().map_or(0, |o| o.len()) != 3
        {
            return Err(DetectError::Output {
                path,
                detail: "expected 1 input and 3 outputs (loc, conf, landmarks)".into(),
            });
        }
        let anchors = AnchorConfig::mobilenet025();
        Ok(RetinaFace {
            priors: PriorCache::new(anchors.clone(), config.cached_sizes),
            path,
            model,
            config,
            anchors,
            states: Vec::new(),
        })
    }

    /// The run-time settings.
    pub fn config(&self) -> &RetinaFaceConfig {
        &self.config
    }

    /// The file (or label) the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Builds (or finds) the optimised model for frames of `width x height`, so that
    /// the first [`FaceDetector::detect`] on such frames does not pay for it.
    pub fn prepare(&mut self, width: u32, height: u32) -> Result<(), DetectError> {
        if width == 0 || height == 0 {
            return Err(DetectError::EmptyFrame { width, height });
        }
        let (w, h) = self.config.input_size(width, height);
        self.state_for(w, h).map(|_| ())
    }

    /// Runs the model on `frame` with the detector's preprocessing and returns the
    /// raw per-prior outputs (for parity checks and debugging).
    pub fn raw_outputs(&mut self, frame: &RgbImage) -> Result<RawOutputs, DetectError> {
        let (w, h, outputs) = self.run(frame)?;
        let [loc, conf, landmarks] = self.split_outputs(&outputs, w, h)?;
        Ok(RawOutputs {
            width: w,
            height: h,
            loc: loc.to_vec(),
            conf: conf.to_vec(),
            landmarks: landmarks.to_vec(),
        })
    }

    fn state_for(&mut self, w: u32, h: u32) -> Result<&mut TypedSimpleState, DetectError> {
        if let Some(pos) = self.states.iter().position(|(k, _)| *k == (w, h)) {
            let entry = self.states.remove(pos);
            self.states.push(entry);
        } else {
            let state = self
                .model
                .clone()
                .with_input_fact(0, f32::fact([1, 3, h as usize, w as usize]).into())
                .and_then(|m| m.into_optimized())
                .and_then(|m| m.into_runnable())
                .and_then(|plan| TypedSimpleState::new(&plan))
                .map_err(|e| DetectError::Prepare {
                    path: self.path.clone(),
                    width: w,
                    height: h,
                    detail: format!("{e:#}"),
                })?;
            if self.states.len() >= self.config.cached_sizes {
                self.states.remove(0);
            }
            self.states.push(((w, h), state));
        }
        match self.states.last_mut() {
            Some((_, state)) => Ok(state),
            None => unreachable!("an entry was just pushed"),
        }
    }

    /// Preprocesses and runs; returns the input size and the model outputs.
    fn run(&mut self, frame: &RgbImage) -> Result<(u32, u32, TVec<TValue>), DetectError> {
        let (fw, fh) = frame.dimensions();
        if fw == 0 || fh == 0 {
            return Err(DetectError::EmptyFrame {
                width: fw,
                height: fh,
            });
        }
        let (w, h) = self.config.input_size(fw, fh);
        let run_err = |path: &Path, e: TractError| DetectError::Run {
            path: path.to_path_buf(),
            width: w,
            height: h,
            detail: format!("{e:#}"),
        };
        let input = to_input_tensor(frame, w, h).map_err(|e| run_err(&self.path, e))?;
        let state = self.state_for(w, h)?;
        let outputs = state.run(tvec!(input.into()));
        let outputs = outputs.map_err(|e| run_err(&self.path, e))?;
        Ok((w, h, outputs))
    }

    /// Finds `loc`, `conf`, `landmarks` by their last dimension (4, 2, 10) and checks
    /// that each holds one row per prior.
    fn split_outputs<'a>(
        &self,
        outputs: &'a [TValue],
        w: u32,
        h: u32,
    ) -> Result<[&'a [f32]; 3], DetectError> {
        let n = self.anchors.num_priors(w, h);
        let bad = |detail: String| DetectError::Output {
            path: self.path.clone(),
            detail,
        };
        let mut found: [Option<&[f32]>; 3] = [None; 3];
        for (i, out) in outputs.iter().enumerate() {
            let shape = out.shape();
            let slot = match shape.last() {
                Some(4) => 0,
                Some(2) => 1,
                Some(10) => 2,
                _ => return Err(bad(format!("output #{i} has shape {shape:?}"))),
            };
            if shape.len() != 3 || shape[0] != 1 || shape[1] != n {
                return Err(bad(format!(
                    "output #{i} has shape {shape:?}; a {w}x{h} input has {n} priors"
                )));
            }
            let data = out
                .try_as_plain_ram()
                .and_then(|v| v.as_slice::<f32>())
                .map_err(|e| bad(format!("output #{i}: {e:#}")))?;
            found[slot] = Some(data);
        }
        match found {
            [Some(loc), Some(conf), Some(lm)] => Ok([loc, conf, lm]),
            _ => Err(bad(
                "expected outputs with last dimension 4, 2 and 10".into()
            )),
        }
    }
}

impl FaceDetector for RetinaFace {
    fn detect(&mut self, frame: &RgbImage) -> Result<Vec<Detection>, DetectError> {
        let (w, h, outputs) = self.run(frame)?;
        let [loc, conf, lm] = self.split_outputs(&outputs, w, h)?;
        let priors = self.priors.get(w, h);
        let var = self.anchors.variance;
        let (sx, sy) = (frame.width() as f32, frame.height() as f32);

        let mut candidates: Vec<(f32, usize)> = conf
            .chunks_exact(2)
            .enumerate()
            .filter(|(_, c)| c[1] >= self.config.score_threshold)
            .map(|(i, c)| (c[1], i))
            .collect();
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        candidates.truncate(self.config.pre_nms_top_k);

        let detections = candidates
            .into_iter()
            .filter_map(|(score, i)| {
                let prior = priors.get(i)?;
                let l: [f32; 4] = loc.get(4 * i..4 * i + 4)?.try_into().ok()?;
                let p: &[f32; 10] = lm.get(10 * i..10 * i + 10)?.try_into().ok()?;
                let bbox = to_pixels(decode_box(l, prior, var), sx, sy);
                let landmarks = landmarks_to_pixels(decode_landmarks(p, prior, var), sx, sy);
                let finite = bbox
                    .iter()
                    .chain(landmarks.iter().flatten())
                    .all(|v| v.is_finite());
                finite.then_some(Detection {
                    bbox,
                    landmarks,
                    score,
                })
            })
            .collect();
        Ok(nms(detections, self.config.nms_iou, self.config.top_k))
    }
}

/// Resizes `frame` to `w x h` (if needed) and lays it out as `[1, 3, h, w]` BGR minus
/// [`BGR_MEAN`].
fn to_input_tensor(frame: &RgbImage, w: u32, h: u32) -> TractResult<Tensor> {
    let resized;
    let img = if frame.dimensions() == (w, h) {
        frame
    } else {
        resized = imageops::resize(frame, w, h, FilterType::Triangle);
        &resized
    };
    let plane = (w as usize) * (h as usize);
    let mut tensor = Tensor::zero::<f32>(&[1, 3, h as usize, w as usize])?;
    {
        let mut view = tensor.try_as_plain_ram_mut()?;
        let data = view.as_slice_mut::<f32>()?;
        let (b, rest) = data.split_at_mut(plane);
        let (g, r) = rest.split_at_mut(plane);
        for (i, px) in img.pixels().enumerate() {
            b[i] = f32::from(px[2]) - BGR_MEAN[0];
            g[i] = f32::from(px[1]) - BGR_MEAN[1];
            r[i] = f32::from(px[0]) - BGR_MEAN[2];
        }
    }
    Ok(tensor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_size_keeps_small_frames() {
        let c = RetinaFaceConfig::default();
        assert_eq!(c.input_size(512, 600), (512, 600));
        assert_eq!(c.input_size(640, 640), (640, 640));
    }

    #[test]
    fn input_size_scales_long_side_keeping_aspect() {
        let c = RetinaFaceConfig::default();
        assert_eq!(c.input_size(1280, 960), (640, 480));
        assert_eq!(c.input_size(960, 1280), (480, 640));
        assert_eq!(c.input_size(1666, 1136), (640, 436));
        assert_eq!(c.input_size(10000, 1), (640, 1));
    }

    #[test]
    fn config_validation_names_the_field() {
        let bad = RetinaFaceConfig {
            score_threshold: 1.5,
            ..Default::default()
        };
        match bad.validate() {
            Err(DetectError::Config { field, .. }) => assert_eq!(field, "score_threshold"),
            other => panic!("{other:?}"),
        }
        let bad = RetinaFaceConfig {
            nms_iou: f32::NAN,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        assert!(RetinaFaceConfig::default().validate().is_ok());
    }

    #[test]
    fn input_tensor_is_bgr_minus_mean_nchw() {
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, image::Rgb([10, 20, 30]));
        img.put_pixel(1, 0, image::Rgb([200, 117, 104]));
        let t = to_input_tensor(&img, 2, 1).unwrap();
        assert_eq!(t.shape(), &[1, 3, 1, 2]);
        let v = t.try_as_plain_ram().unwrap();
        let s = v.as_slice::<f32>().unwrap();
        assert_eq!(
            s,
            &[30.0 - 104.0, 0.0, 20.0 - 117.0, 0.0, 10.0 - 123.0, 77.0]
        );
    }

    #[test]
    fn garbage_model_is_a_load_error_naming_the_file() {
        let e =
            RetinaFace::from_onnx_bytes("junk.onnx", b"not onnx", Default::default()).unwrap_err();
        assert!(matches!(e, DetectError::Load { .. }), "{e:?}");
        assert!(e.to_string().contains("junk.onnx"));
    }

    #[test]
    fn missing_model_is_an_io_error() {
        let e = RetinaFace::load("/nonexistent/retinaface.onnx", Default::default()).unwrap_err();
        assert!(matches!(e, DetectError::Io { .. }), "{e:?}");
    }

    #[test]
    fn detector_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<RetinaFace>();
    }
}
