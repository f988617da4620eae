//! The audit log reader: any bytes verify or fail with a line number — never a panic;
//! a verified chain counts its lines.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = fas_core::audit::verify_chain(data) {
        let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(s.records, lines);
    }
});
