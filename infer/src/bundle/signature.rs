//! `manifest.sig`: `{"algorithm":"ed25519","key_id":"<16 hex>","signature":"<128 hex>"}`,
//! an ed25519 signature over the exact bytes of `manifest.json` as stored in the tar.

use serde::{Deserialize, Serialize};

use super::keys::is_key_id;

/// The only algorithm this format version knows.
pub const ALGORITHM: &str = "ed25519";

/// The parsed `manifest.sig`. Who signed is only a claim until a trusted key verifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSignature {
    pub algorithm: String,
    pub key_id: String,
    /// 64 signature bytes, lowercase hex.
    pub signature: String,
}

impl ManifestSignature {
    pub fn new(key_id: &str, signature: &[u8; 64]) -> ManifestSignature {
        ManifestSignature {
            algorithm: ALGORITHM.to_string(),
            key_id: key_id.to_string(),
            signature: hex::encode(signature),
        }
    }

    /// Parse and check the shape of every field; the error says what is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<ManifestSignature, String> {
        let s: ManifestSignature =
            serde_json::from_slice(bytes).map_err(|e| format!("not valid ({e})"))?;
        if s.algorithm != ALGORITHM {
            return Err(format!(
                "field \"algorithm\" is {:?}; only {ALGORITHM:?} is supported",
                s.algorithm
            ));
        }
        if !is_key_id(&s.key_id) {
            return Err(format!(
                "field \"key_id\" {:?} is not 16 lowercase hex digits",
                s.key_id
            ));
        }
        let hex_ok = s.signature.len() == 128
            && s.signature
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex_ok {
            return Err("field \"signature\" is not 128 lowercase hex digits".into());
        }
        Ok(s)
    }

    /// The JSON stored as `manifest.sig` (compact, fields in the documented order).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a signature always serialises")
    }

    /// The raw signature bytes (only for a value that passed [`Self::from_json`] or was made
    /// by [`Self::new`]).
    pub fn signature_bytes(&self) -> Option<[u8; 64]> {
        let mut raw = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut raw).ok()?;
        Some(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_layout_and_round_trip() {
        let s = ManifestSignature::new("0123456789abcdef", &[0xab; 64]);
        let json = String::from_utf8(s.to_json()).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"algorithm":"ed25519","key_id":"0123456789abcdef","signature":"{}"}}"#,
                "ab".repeat(64)
            )
        );
        let back = ManifestSignature::from_json(json.as_bytes()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.signature_bytes(), Some([0xab; 64]));
    }

    #[test]
    fn rejects_malformed() {
        let good = ManifestSignature::new("0123456789abcdef", &[1; 64]);
        let mut v = serde_json::to_value(&good).unwrap();
        v["algorithm"] = "rsa".into();
        let e = ManifestSignature::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("algorithm"), "{e}");
        let mut v = serde_json::to_value(&good).unwrap();
        v["key_id"] = "0123".into();
        let e = ManifestSignature::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("key_id"), "{e}");
        let mut v = serde_json::to_value(&good).unwrap();
        v["signature"] = "zz".repeat(64).into();
        let e = ManifestSignature::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("signature"), "{e}");
        let mut v = serde_json::to_value(&good).unwrap();
        v["extra"] = 1.into();
        let e = ManifestSignature::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        assert!(ManifestSignature::from_json(b"").is_err());
    }
}
