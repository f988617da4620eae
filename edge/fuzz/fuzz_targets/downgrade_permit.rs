//! The downgrade permit: only a permit signed by the trusted key verifies.

#![no_main]

use std::sync::OnceLock;

use fas_infer::bundle::permit::SignedPermit;
use fas_infer::bundle::{SecretKey, TrustedKeys};
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static TrustedKeys {
    static KEYS: OnceLock<TrustedKeys> = OnceLock::new();
    KEYS.get_or_init(|| TrustedKeys::single(SecretKey::from_seed([5; 32]).public()))
}

fuzz_target!(|data: &[u8]| {
    if let Ok((p, signer)) = SignedPermit::verify(data, keys()) {
        assert_eq!(signer, SecretKey::from_seed([5; 32]).id());
        assert_eq!(p.kind, "downgrade");
    }
});
