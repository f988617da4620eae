//! fas-edge: camera → face → liveness → fail-closed door decision.

pub mod access;
pub mod actuator;
pub mod app;
pub mod camera;
pub mod cli;
pub mod config;
pub mod crop;
pub mod display;
pub mod door;
pub mod forward;
pub mod model;
pub mod notify;
pub mod policy;
pub mod quality;
pub mod signals;
pub mod status;
pub mod track;
pub mod trigger;
pub mod trust;
