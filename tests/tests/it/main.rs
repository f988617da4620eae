//! Cross-crate tests: export parity (tch/ONNX/tract), preprocessing parity, the round trip,
//! errors said once (messages without their cause; the CLIs print the chain).
//!
//! One test binary for the crate (modules below), so a test run links it once.

mod errors;
mod export_parity;
mod preprocess_parity;
mod roundtrip;
