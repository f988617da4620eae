//! `state.json` (anti-rollback): never a panic; a state that parses is format 1.

#![no_main]

use fas_edge::trust::state::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = parse(data, std::path::Path::new("state.json")) {
        assert_eq!(s.format_version, 1);
    }
});
