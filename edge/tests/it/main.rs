//! Integration tests of fas-edge: the door's parts and its faults, end to end.
//!
//! One test binary for the crate (modules below), so a test run links it once.

mod actuator;
mod camera;
mod display;
mod faults;
mod policy;
mod quality;
mod signals;
mod track;
