//! Integration tests of fas-core: metric and preprocessing known answers and properties.
//!
//! One test binary for the crate (modules below), so a test run links it once.

mod metrics_kat;
mod metrics_props;
mod preprocess_kat;
mod preprocess_props;
