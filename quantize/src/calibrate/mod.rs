//! Post-training calibration: the inputs it feeds the model, the activation histograms it
//! collects in tract, and the four ways of turning a histogram into a quantisation range
//! (one file each: [`minmax`], [`percentile`], [`entropy`], [`mse`]).

pub mod collect;
pub mod entropy;
pub mod grid;
pub mod histogram;
pub mod input;
pub mod manifest;
pub mod minmax;
pub mod mse;
pub mod percentile;
pub mod probe;
pub mod range;

pub use collect::{calibrate, CalibrationError, CalibrationOptions};
pub use grid::{ActivationType, QParams};
pub use histogram::Histogram;
pub use probe::{Probe, ProbeError};
pub use range::{CalibrationMethod, TensorRange};
