//! Fuzz the `.fasb` reader: arbitrary bytes must never panic it, and whatever loads must
//! carry files whose hashes its manifest records (and, on the verified path, a signer).
//!
//! Seed the corpus with bundles signed by the key of seed `[7; 32]` (the one trusted
//! here) so the fuzzer reaches the signature and hash checks.

#![no_main]

use std::sync::OnceLock;

use fas_core::bundle::sha256_hex;
use fas_infer::bundle::{Bundle, PublicKey, TrustedKeys};
use libfuzzer_sys::fuzz_target;

fn trusted() -> &'static TrustedKeys {
    static KEYS: OnceLock<TrustedKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let public = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .to_bytes();
        TrustedKeys::single(PublicKey::from_bytes(&public).expect("a valid key"))
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Bundle::from_bytes(data, trusted(), "fuzz") {
        assert!(b.signer.is_some());
        for (name, bytes) in &b.files {
            assert_eq!(b.manifest.files[name], sha256_hex(bytes));
        }
    }
    if let Ok(b) = Bundle::from_bytes_unverified(data, "fuzz") {
        assert!(b.signer.is_none());
        for (name, bytes) in &b.files {
            assert_eq!(b.manifest.files[name], sha256_hex(bytes));
        }
    }
});
