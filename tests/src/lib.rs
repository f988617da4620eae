//! fas-tests: whole-pipeline tests and benchmarks across crates (see `tests/`).
