//! The revocation list: a list that parses holds only well-formed entries.

#![no_main]

use fas_edge::trust::revocation::Revocations;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Revocations::parse(text) {
        assert!(r.keys.iter().all(|k| fas_infer::bundle::keys::is_key_id(k)));
        assert!(r.bundles.iter().all(|b| fas_core::audit::is_sha256_hex(b)));
        for b in &r.bundles {
            assert!(r.check(b, None).is_err());
        }
    }
});
