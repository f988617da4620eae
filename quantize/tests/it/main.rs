//! Integration tests of fas-quantize: the CLI and int8 quantisation.
//!
//! One test binary for the crate (modules below), so a test run links it once.

mod cli;
mod int8;
mod onnx_kat;
