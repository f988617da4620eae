//! Post-training calibration: the inputs it feeds the model.

pub mod input;
