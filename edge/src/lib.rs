//! fas-edge: camera → face → liveness → fail-closed door decision.

pub mod actuator;
pub mod crop;
pub mod display;
pub mod policy;
