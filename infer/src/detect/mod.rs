//! Face detection: the [`FaceDetector`] trait, the [`Detection`] it returns and the
//! RetinaFace implementation with its building blocks (prior boxes, decoding, NMS), and
//! MTCNN as the alternative.

pub mod decode;
pub mod mtcnn;
pub mod nms;
pub mod priors;
pub mod retinaface;

use std::path::PathBuf;

pub use image::RgbImage;
pub use mtcnn::{Mtcnn, MtcnnConfig};
pub use retinaface::{RetinaFace, RetinaFaceConfig};

/// One detected face, in pixel coordinates of the frame given to the detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]`: top-left and bottom-right corners, `x1 <= x2`, `y1 <= y2`.
    /// May extend slightly past the frame border; not clipped.
    pub bbox: [f32; 4],
    /// `[x, y]` of the left eye, right eye, nose tip, left mouth corner and right mouth
    /// corner, "left" and "right" as seen in the image (the left eye has the smaller x
    /// in a frontal, upright face).
    pub landmarks: [[f32; 2]; 5],
    /// Face confidence in `[0, 1]`.
    pub score: f32,
}

impl From<Detection> for fas_core::preprocess::Face {
    /// The detection in fas-core's terms, ready for `fas_core::preprocess::preprocess`.
    fn from(d: Detection) -> Self {
        fas_core::preprocess::Face {
            bbox: d.bbox,
            landmarks: d.landmarks,
            score: d.score,
        }
    }
}

impl Detection {
    /// Box width in pixels (never negative).
    pub fn width(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0)
    }

    /// Box height in pixels (never negative).
    pub fn height(&self) -> f32 {
        (self.bbox[3] - self.bbox[1]).max(0.0)
    }

    /// Box area in square pixels (never negative).
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Centre `[x, y]` of the box.
    pub fn center(&self) -> [f32; 2] {
        [
            0.5 * (self.bbox[0] + self.bbox[2]),
            0.5 * (self.bbox[1] + self.bbox[3]),
        ]
    }
}

/// A face detector: RGB frame in, faces out.
///
/// # Contract
///
/// * `detect` returns every face it finds with `score >= ` its configured threshold,
///   sorted by descending score, with no two boxes overlapping above its NMS IoU
///   threshold; an image without faces gives `Ok(vec![])`, not an error.
/// * Coordinates are pixels of `frame` as given, whatever size the detector runs at
///   internally; all values are finite.
/// * Frames of any size are accepted; a zero-sized frame is an error
///   ([`DetectError::EmptyFrame`]). The detector never panics on frame content.
/// * `&mut self` lets an implementation reuse buffers and cached models between calls;
///   results do not depend on earlier calls.
pub trait FaceDetector {
    /// Detects the faces in `frame`.
    fn detect(&mut self, frame: &RgbImage) -> Result<Vec<Detection>, DetectError>;
}

/// A boxed detector is a detector (the door picks RetinaFace or MTCNN from its config).
impl<D: FaceDetector + ?Sized> FaceDetector for Box<D> {
    fn detect(&mut self, frame: &RgbImage) -> Result<Vec<Detection>, DetectError> {
        (**self).detect(frame)
    }
}

/// Everything that can go wrong while loading or running a face detector.
///
/// tract's errors are kept as their full context chain (`detail`), which names the
/// ONNX node that failed.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The model file could not be read.
    #[error("cannot read detector model {path} — check the path and its permissions")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The model file is not an ONNX model tract can load.
    #[error("cannot load detector model {path}: {detail}")]
    Load { path: PathBuf, detail: String },
    /// The model could not be typed / optimised for a concrete input size.
    #[error("cannot prepare detector model {path} for a {width}x{height} input: {detail}")]
    Prepare {
        path: PathBuf,
        width: u32,
        height: u32,
        detail: String,
    },
    /// Running the model failed.
    #[error("detector model {path} failed on a {width}x{height} input: {detail}")]
    Run {
        path: PathBuf,
        width: u32,
        height: u32,
        detail: String,
    },
    /// The model's outputs are not what the decoder expects.
    #[error("detector model {path}: unexpected output: {detail}")]
    Output { path: PathBuf, detail: String },
    /// The frame has no pixels.
    #[error("cannot detect faces in an empty {width}x{height} frame")]
    EmptyFrame { width: u32, height: u32 },
    /// A configuration value is out of range.
    #[error("invalid detector configuration: {field} = {value}: {reason}")]
    Config {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
}

impl DetectError {
    /// `Err` of [`DetectError::Config`]: what the detectors' `validate` return.
    pub fn config(
        field: &'static str,
        value: String,
        reason: &'static str,
    ) -> Result<(), DetectError> {
        Err(DetectError::Config {
            field,
            value,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_geometry() {
        let d = Detection {
            bbox: [10.0, 20.0, 30.0, 60.0],
            landmarks: [[0.0; 2]; 5],
            score: 0.9,
        };
        assert_eq!(d.width(), 20.0);
        assert_eq!(d.height(), 40.0);
        assert_eq!(d.area(), 800.0);
        assert_eq!(d.center(), [20.0, 40.0]);
    }

    #[test]
    fn degenerate_box_has_zero_area() {
        let d = Detection {
            bbox: [30.0, 20.0, 10.0, 10.0],
            landmarks: [[0.0; 2]; 5],
            score: 0.1,
        };
        assert_eq!(d.area(), 0.0);
    }

    #[test]
    fn errors_name_the_file() {
        let e = DetectError::Load {
            path: PathBuf::from("/x/retinaface.onnx"),
            detail: "node conv1: bad".into(),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("/x/retinaface.onnx") && msg.contains("conv1"),
            "{msg}"
        );
    }
}
