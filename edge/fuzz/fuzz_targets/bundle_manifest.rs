//! `manifest.json`: a manifest that parses validates and round-trips through its
//! canonical form (the signed bytes).

#![no_main]

use fas_core::bundle::BundleManifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = BundleManifest::from_json(data) {
        m.validate().expect("a parsed manifest validates");
        let canonical = m.to_canonical_json();
        let again = BundleManifest::from_json(&canonical).expect("canonical form parses");
        assert_eq!(again.to_canonical_json(), canonical);
        assert!(m.effective_floor() <= 1.0);
    }
});
