//! fas-infer: everything that runs ONNX through tract — face detectors and bundle scoring.
