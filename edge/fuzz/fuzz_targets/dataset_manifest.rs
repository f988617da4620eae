//! One line of a dataset manifest (`manifest.jsonl`): parsed or refused with its line
//! number, never a panic.

#![no_main]

use fas_core::dataset::Sample;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Sample::parse_line(text, "manifest.jsonl", 7) {
        assert!(e.to_string().contains("manifest.jsonl"));
    }
});
