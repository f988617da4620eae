//! fas-edge: camera → face → liveness → fail-closed door decision.

pub mod camera;
pub mod crop;
pub mod quality;
pub mod track;
