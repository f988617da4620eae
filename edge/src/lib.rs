//! fas-edge: camera → face → liveness → fail-closed door decision.

pub mod crop;
pub mod policy;
