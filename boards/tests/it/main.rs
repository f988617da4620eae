//! Integration tests of fas-boards: its CLI and the images it builds.
//!
//! One test binary for the crate (modules below), so a test run links it once.

mod cli;
mod image;
