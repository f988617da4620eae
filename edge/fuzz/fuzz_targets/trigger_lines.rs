//! Trigger input (stdin, socket): no line over the cap is ever passed on.

#![no_main]

use fas_edge::trigger::{read_lines_capped, MAX_TRIGGER_LINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut total = 0;
    let _ = read_lines_capped(data, |l| {
        assert!(l.len() <= MAX_TRIGGER_LINE + 1);
        total += l.len();
        true
    });
    assert!(total <= data.len());
});
