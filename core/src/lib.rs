//! fas-core: what every fas crate shares — preprocessing, the model IR, the file formats
//! that cross crate boundaries, presentation-attack-detection metrics and the SynthFAS
//! generator. No tch, no tract: this crate builds anywhere.

pub mod access;
pub mod assets;
pub mod atomic;
pub mod audit;
pub mod bundle;
pub mod dataset;
pub mod decision;
pub mod ir;
pub mod metrics;
pub mod plot;
pub mod preprocess;
pub mod report;
pub mod rundir;
pub mod synthfas;

/// MTCNN's three networks (P-, R-, O-Net): the file names fas-infer loads from a
/// directory, fas-edge looks for in `detector.mtcnn_dir` or `/usr/share/fas`, and
/// fas-boards installs there.
pub const MTCNN_FILES: [&str; 3] = ["mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx"];
