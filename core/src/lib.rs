//! fas-core: what every fas crate shares — preprocessing, the model IR, the file formats
//! that cross crate boundaries, presentation-attack-detection metrics and the SynthFAS
//! generator. No tch, no tract: this crate builds anywhere.

pub mod atomic;
pub mod audit;
pub mod bundle;
pub mod dataset;
pub mod decision;
pub mod ir;
pub mod metrics;
pub mod plot;
pub mod preprocess;
pub mod synthfas;
