//! Integration tests of fas-infer: bundles, detectors and the face embedder.
//!
//! One test binary for the crate (modules below), so a test run links it once.

mod bundle;
mod detect;
