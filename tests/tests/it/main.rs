//! Cross-crate tests: export parity (tch/ONNX/tract), preprocessing parity, the round trip.
//!
//! One test binary for the crate (modules below), so a test run links it once.

mod export_parity;
mod preprocess_parity;
mod roundtrip;
