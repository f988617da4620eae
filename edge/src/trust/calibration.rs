//! `calibration.json`, written by `fas-edge calibrate`:
//! `{"calibration": {…}, "signature": {"algorithm":"ed25519","key_id":…,"signature":…}}`.
//!
//! The signature is the device key's ed25519 signature over the canonical JSON
//! (`fas_core::bundle::canonical_json`) of the `calibration` object. The door accepts the
//! file only when that signature verifies with its own device key, the file was made for
//! the bundle it is running (`bundle_sha256`), and the threshold lies within what the
//! bundle's publisher signed: `[floor, 1]`. Anything else keeps the door locked: someone
//! who can write the file cannot lower the bar.

use std::path::Path;

use anyhow::{bail, Context, Result};
use fas_core::bundle::canonical_json;
use fas_infer::bundle::{ManifestSignature, SecretKey};
use serde::{Deserialize, Serialize};

use super::short;

/// The calibration record's layout version.
pub const CALIBRATION_FORMAT: u32 = 2;

/// What `fas-edge calibrate` measured and the threshold the door uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub format_version: u32,
    /// The threshold the door uses: `fitted_threshold` raised to the floor if it was below.
    pub threshold: f64,
    /// The threshold that met `target_bpcer` on the bona fide sessions.
    pub fitted_threshold: f64,
    /// The bundle's signed floor when this was made.
    pub floor: Option<f64>,
    pub target_bpcer: f64,
    /// BPCER / APCER measured on the calibration sessions at `threshold`.
    pub bpcer: f64,
    pub apcer: Option<f64>,
    pub bona_fide: Vec<f64>,
    pub attacks: Vec<f64>,
    /// sha256 of the liveness ONNX.
    pub model_sha256: String,
    /// What the door ran: sha256 of the bundle's `manifest.json` (or, on the development
    /// ONNX path, of the ONNX file).
    pub bundle_sha256: String,
    pub time_ms: u64,
}

/// The file: the record and the device key's signature over its canonical JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCalibration {
    pub calibration: Calibration,
    pub signature: ManifestSignature,
}

impl Calibration {
    /// Sign with the device key.
    pub fn sign(self, key: &SecretKey) -> SignedCalibration {
        let signature = ManifestSignature::new(&key.id(), &key.sign(&canonical_json(&self)));
        SignedCalibration {
            calibration: self,
            signature,
        }
    }
}

/// What a calibration must agree with to be used.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// The bundle the door runs (`Calibration::bundle_sha256`).
    pub bundle_sha256: &'a str,
    /// The bundle's signed floor (`None` only on the development ONNX path).
    pub floor: Option<f64>,
    /// The device key (`device.key`).
    pub key_path: &'a Path,
}

/// Read `path` and check it against the device key at `expect.key_path` and the rest of
/// `expect`; the error names the file, what is wrong and the fix.
pub fn load_verified(path: &Path, expect: &Expect) -> Result<Calibration> {
    let signed = read_signed(path)?;
    let key = super::device_key::load(expect.key_path).with_context(|| {
        format!(
            "{}: signed with a device key, but this device's key cannot be read — run `fas-edge calibrate` again (or remove the calibration to use the bundle's threshold)",
            path.display()
        )
    })?;
    verify(path, signed, &key, expect)
}

const AGAIN: &str = "run `fas-edge calibrate` again on this device";

fn read_signed(path: &Path) -> Result<SignedCalibration> {
    let text =
        std::fs::read(path).with_context(|| format!("reading calibration {}", path.display()))?;
    let again = AGAIN;
    match serde_json::from_slice(&text) {
        Ok(s) => Ok(s),
        Err(e) => {
            let unsigned = serde_json::from_slice::<serde_json::Value>(&text)
                .ok()
                .is_some_and(|v| v.get("threshold").is_some());
            if unsigned {
                bail!(
                    "{}: an unsigned calibration (from an older fas-edge, or written by hand) — the door uses only calibrations signed with its device key; {again}",
                    path.display()
                );
            }
            Err(e).with_context(|| {
                format!(
                    "{}: not a fas-edge calibration file — {again}",
                    path.display()
                )
            })
        }
    }
}

/// Check a parsed file's signature, format, bundle and range.
pub fn verify(
    path: &Path,
    signed: SignedCalibration,
    key: &SecretKey,
    expect: &Expect,
) -> Result<Calibration> {
    let again = AGAIN;
    let sig = ManifestSignature::from_json(&signed.signature.to_json())
        .map_err(|p| anyhow::anyhow!("{}: field \"signature\": {p} — {again}", path.display()))?;
    if sig.key_id != key.id() {
        bail!(
            "{}: signed by key {} but this device's key ({}) is {} — a calibration from another device or another key is not used; {again}",
            path.display(),
            sig.key_id,
            expect.key_path.display(),
            key.id()
        );
    }
    let raw = sig.signature_bytes().expect("shape checked by from_json");
    let c = signed.calibration;
    if !key.public().verify(&canonical_json(&c), &raw) {
        bail!(
            "{}: the signature does not match its content — the file was altered after `fas-edge calibrate` wrote it; {again}",
            path.display()
        );
    }
    if c.format_version != CALIBRATION_FORMAT {
        bail!(
            "{}: field \"calibration.format_version\": {} is not {CALIBRATION_FORMAT} — {again}",
            path.display(),
            c.format_version
        );
    }
    if c.bundle_sha256 != expect.bundle_sha256 {
        bail!(
            "{}: calibrated for bundle {} but the door runs {} — {again} for this bundle (or remove the file to use the bundle's threshold)",
            path.display(),
            short(&c.bundle_sha256),
            short(expect.bundle_sha256)
        );
    }
    check_range(c.threshold, expect.floor).map_err(|p| {
        anyhow::anyhow!(
            "{}: field \"calibration.threshold\": {p} — {again}",
            path.display()
        )
    })?;
    Ok(c)
}

/// A threshold the door may use: finite, in `[floor, 1]` (or `[0, 1]` without a floor).
pub fn check_range(t: f64, floor: Option<f64>) -> Result<(), String> {
    if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
        return Err(format!("{t} is not in [0, 1]"));
    }
    if let Some(f) = floor.filter(|&f| t < f) {
        return Err(format!(
            "{t} is below the bundle's signed threshold floor {f} (the most permissive threshold its publisher allows)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(threshold: f64) -> Calibration {
        Calibration {
            format_version: CALIBRATION_FORMAT,
            threshold,
            fitted_threshold: threshold,
            floor: Some(0.4),
            target_bpcer: 0.05,
            bpcer: 0.0,
            apcer: None,
            bona_fide: vec![0.9, 0.8, 0.95],
            attacks: vec![],
            model_sha256: "ab".repeat(32),
            bundle_sha256: "cd".repeat(32),
            time_ms: 1,
        }
    }

    fn load(p: &Path, key: &SecretKey, e: &Expect) -> Result<Calibration> {
        verify(p, read_signed(p)?, key, e)
    }

    fn expect(key_path: &Path) -> Expect<'_> {
        Expect {
            bundle_sha256: "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            floor: Some(0.4),
            key_path,
        }
    }

    fn write(dir: &Path, v: &impl Serialize) -> std::path::PathBuf {
        let p = dir.join("calibration.json");
        std::fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();
        p
    }

    #[test]
    fn accepts_only_own_signed_in_range_for_this_bundle() {
        let d = tempfile::tempdir().unwrap();
        let key = SecretKey::from_seed([3; 32]);
        let kp = d.path().join("device.key");
        let good = write(d.path(), &record(0.6).sign(&key));
        assert_eq!(load(&good, &key, &expect(&kp)).unwrap().threshold, 0.6);

        // The attack of the security review: an unsigned file with a low threshold.
        let p = write(
            d.path(),
            &serde_json::json!({
                "threshold": 0.01, "target_bpcer": 0.05, "bpcer": 0.0, "apcer": null,
                "bona_fide": [0.9], "attacks": [], "model_sha256": "ab".repeat(32), "time_ms": 0
            }),
        );
        let e = format!("{:#}", load(&p, &key, &expect(&kp)).unwrap_err());
        assert!(e.contains("unsigned calibration"), "{e}");

        // Signed, then its threshold lowered by hand.
        let mut v = serde_json::to_value(record(0.6).sign(&key)).unwrap();
        v["calibration"]["threshold"] = 0.45.into();
        let p = write(d.path(), &v);
        let e = format!("{:#}", load(&p, &key, &expect(&kp)).unwrap_err());
        assert!(e.contains("does not match its content"), "{e}");

        // Signed by another key (another device, or the attacker's).
        let p = write(d.path(), &record(0.6).sign(&SecretKey::from_seed([4; 32])));
        let e = format!("{:#}", load(&p, &key, &expect(&kp)).unwrap_err());
        assert!(e.contains("signed by key"), "{e}");

        // Properly signed but below the bundle's floor (a device key that leaked cannot
        // lower the bar either).
        let p = write(d.path(), &record(0.2).sign(&key));
        let e = format!("{:#}", load(&p, &key, &expect(&kp)).unwrap_err());
        assert!(
            e.contains("below the bundle's signed threshold floor 0.4"),
            "{e}"
        );

        // Made for another bundle.
        let mut other = record(0.6);
        other.bundle_sha256 = "ef".repeat(32);
        let p = write(d.path(), &other.sign(&key));
        let e = format!("{:#}", load(&p, &key, &expect(&kp)).unwrap_err());
        assert!(e.contains("calibrated for bundle efefefefefef"), "{e}");

        // A short hash in the file never panics the message.
        let mut short_hash = record(0.6);
        short_hash.bundle_sha256 = "x".into();
        let p = write(d.path(), &short_hash.sign(&key));
        assert!(load(&p, &key, &expect(&kp)).is_err());
    }

    #[test]
    fn range() {
        assert!(check_range(0.5, Some(0.5)).is_ok());
        assert!(check_range(1.0, None).is_ok());
        assert!(check_range(0.49, Some(0.5)).is_err());
        assert!(check_range(f64::NAN, None).is_err());
        assert!(check_range(1.5, None).is_err());
    }
}
