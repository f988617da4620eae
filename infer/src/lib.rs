//! fas-infer: everything that runs ONNX through tract — face detectors and bundle scoring.
//!
//! * [`detect`]: the [`detect::FaceDetector`] trait and its RetinaFace (mobilenet-0.25,
//!   5 landmarks) implementation: prior boxes, decoding, NMS.
//! * [`bundle`]: reading signed model bundles (`*.fasb`) and verifying their signature,
//!   manifest and file hashes.
//! * [`embed`]: face verification — 5-landmark similarity alignment and the dlib ResNet
//!   embedder ([`embed::FaceEmbedder`]), compared by cosine [`embed::similarity`].

pub mod bundle;
pub mod detect;
pub mod embed;
pub mod liveness;
