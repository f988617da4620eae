//! The downgrade permit: an operator's signed consent to run one older bundle on a device
//! that has already run a newer one (anti-rollback, see `fas-edge`'s device state).
//!
//! `{"permit": {"kind": "downgrade", "bundle_sha256": "<64 hex>", "bundle_version": N},
//!   "signature": {"algorithm": "ed25519", "key_id": …, "signature": …}}`: the signature is
//! over the canonical JSON of `permit`, by a key the device trusts for bundles. Written by
//! `fas-quantize permit-downgrade`.

use serde::{Deserialize, Serialize};

use fas_core::bundle::canonical_json;

use super::{ManifestSignature, SecretKey, TrustedKeys};

/// The only kind of permit.
pub const DOWNGRADE: &str = "downgrade";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permit {
    pub kind: String,
    /// The bundle the permit allows (sha256 of its `manifest.json`).
    pub bundle_sha256: String,
    pub bundle_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedPermit {
    pub permit: Permit,
    pub signature: ManifestSignature,
}

impl Permit {
    pub fn downgrade(bundle_sha256: &str, bundle_version: u64) -> Permit {
        Permit {
            kind: DOWNGRADE.into(),
            bundle_sha256: bundle_sha256.into(),
            bundle_version,
        }
    }

    pub fn sign(self, key: &SecretKey) -> SignedPermit {
        let signature = ManifestSignature::new(&key.id(), &key.sign(&canonical_json(&self)));
        SignedPermit {
            permit: self,
            signature,
        }
    }
}

impl SignedPermit {
    /// Parse a permit and check its signature against `keys`; returns the permit and the
    /// signer's key id, or what is wrong (without the file name, which the caller adds).
    pub fn verify(bytes: &[u8], keys: &TrustedKeys) -> Result<(Permit, String), String> {
        let s: SignedPermit =
            serde_json::from_slice(bytes).map_err(|e| format!("not a permit ({e})"))?;
        let sig = ManifestSignature::from_json(&s.signature.to_json())?;
        let key = keys.get(&sig.key_id).ok_or_else(|| {
            format!(
                "signed by key {}, which this device does not trust",
                sig.key_id
            )
        })?;
        let raw = sig.signature_bytes().ok_or("the signature is not hex")?;
        if !key.verify(&canonical_json(&s.permit), &raw) {
            return Err("the signature does not match the permit (altered?)".into());
        }
        if s.permit.kind != DOWNGRADE {
            return Err(format!("kind {:?} is not {DOWNGRADE:?}", s.permit.kind));
        }
        Ok((s.permit, sig.key_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_a_trusted_unaltered_permit() {
        let key = SecretKey::from_seed([5; 32]);
        let keys = TrustedKeys::single(key.public());
        let signed = Permit::downgrade(&"ab".repeat(32), 2).sign(&key);
        let bytes = serde_json::to_vec(&signed).unwrap();
        let (p, id) = SignedPermit::verify(&bytes, &keys).unwrap();
        assert_eq!((p.bundle_version, id), (2, key.id()));
        let other = TrustedKeys::single(SecretKey::from_seed([6; 32]).public());
        assert!(SignedPermit::verify(&bytes, &other)
            .unwrap_err()
            .contains("does not trust"));
        let mut v = serde_json::to_value(&signed).unwrap();
        v["permit"]["bundle_sha256"] = "cd".repeat(32).into();
        let e = SignedPermit::verify(v.to_string().as_bytes(), &keys).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
    }
}
