//! Integration tests of fas-train (all but train_loop, which needs libtorch's process-global RNG to itself).
//!
//! One test binary for the crate (modules below), so a test run links it once.

mod anrl_cli;
mod cli_smoke;
mod common;
mod d2am_cli;
mod dlif_cli;
mod dualstage_cli;
mod import;
mod ir_parity;
mod loader;
mod prepare;
mod protocol;
mod sampler;
