//! `calibration.json`: whatever the bytes, the door uses a threshold only from a file
//! signed by its own key, for its bundle, at or above the floor.

#![no_main]

use std::path::Path;

use fas_edge::trust::calibration::{verify, Expect, SignedCalibration};
use fas_infer::bundle::SecretKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(signed) = serde_json::from_slice::<SignedCalibration>(data) else {
        return;
    };
    let key = SecretKey::from_seed([3; 32]);
    let bundle = "cd".repeat(32);
    let expect = Expect {
        bundle_sha256: &bundle,
        floor: Some(0.4),
        key_path: Path::new("device.key"),
    };
    if let Ok(c) = verify(Path::new("fuzz.json"), signed, &key, &expect) {
        assert!(c.threshold >= 0.4 && c.threshold <= 1.0);
        assert_eq!(c.bundle_sha256, bundle);
    }
});
