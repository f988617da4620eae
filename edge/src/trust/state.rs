//! Anti-rollback: `state.json` remembers the newest bundle version this device has run
//! (`{"format_version":1,"highest_bundle_version":N,"bundle_sha256":…,"time_ms":…}`, mode
//! 0600, replaced atomically). A signed bundle older than that is refused — an attacker
//! cannot put back last year's model with its known weakness — unless an operator-signed
//! downgrade permit for exactly that bundle is given (`model.downgrade`).
//!
//! [`check`] reads only (used by `check-config` too); [`record`] writes after the door has
//! accepted the bundle. An unreadable or corrupt state file stops the door: silently
//! treating it as "nothing run yet" would switch rollback protection off.

use std::path::Path;

use anyhow::{bail, Context, Result};
use fas_infer::bundle::permit::SignedPermit;
use fas_infer::bundle::TrustedKeys;
use serde::{Deserialize, Serialize};

use super::revocation::Revocations;
use super::short;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceState {
    pub format_version: u32,
    pub highest_bundle_version: u64,
    /// The bundle (manifest sha256) that set it.
    pub bundle_sha256: String,
    pub time_ms: u64,
}

/// The bundle being started.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub version: u64,
    pub manifest_sha256: &'a str,
}

/// What [`check`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not older than anything run before; `record` writes it when newer.
    Current { highest: u64 },
    /// Older, allowed by a permit signed by `signer`.
    Downgrade { highest: u64, signer: String },
}

const FIX: &str = "restore it from a backup, or (an operator, knowingly) remove it — that resets rollback protection";

/// The state at `path`; `None` when the device has run no versioned bundle yet.
pub fn read(path: &Path) -> Result<Option<DeviceState>> {
    let fix = FIX;
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| {
                format!("device state {}: cannot read it — {fix}", path.display())
            })
        }
    };
    parse(&bytes, path).map(Some)
}

/// The state file's bytes (`path` only labels errors).
pub fn parse(bytes: &[u8], path: &Path) -> Result<DeviceState> {
    let fix = FIX;
    let s: DeviceState = serde_json::from_slice(bytes)
        .with_context(|| format!("device state {}: corrupt — {fix}", path.display()))?;
    if s.format_version != 1 {
        bail!(
            "device state {}: field \"format_version\": {} is not 1 — written by a newer fas-edge; upgrade",
            path.display(),
            s.format_version
        );
    }
    Ok(s)
}

/// Whether `bundle` may run on this device.
pub fn check(
    path: &Path,
    bundle: Candidate,
    permit: Option<&Path>,
    keys: &TrustedKeys,
    revoked: &Revocations,
) -> Result<Verdict> {
    let highest = read(path)?.map_or(0, |s| s.highest_bundle_version);
    if bundle.version >= highest {
        return Ok(Verdict::Current { highest });
    }
    let Some(permit_path) = permit else {
        bail!(
            "bundle version {} is older than version {highest}, the newest this device has run ({}) — install a newer bundle, or give an operator-signed downgrade permit (`fas-quantize permit-downgrade`) as model.downgrade",
            bundle.version,
            path.display()
        );
    };
    let bytes = std::fs::read(permit_path)
        .with_context(|| format!("reading downgrade permit {}", permit_path.display()))?;
    let (p, signer) = SignedPermit::verify(&bytes, keys)
        .map_err(|e| anyhow::anyhow!("downgrade permit {}: {e}", permit_path.display()))?;
    if revoked.keys.contains(&signer) {
        bail!(
            "downgrade permit {}: signed by key {signer}, which the revocation list revokes — have a current key sign the permit",
            permit_path.display()
        );
    }
    if p.bundle_sha256 != bundle.manifest_sha256 || p.bundle_version != bundle.version {
        bail!(
            "downgrade permit {}: allows bundle {} (version {}), not this one ({}, version {}) — sign a permit for this bundle",
            permit_path.display(),
            short(&p.bundle_sha256),
            p.bundle_version,
            short(bundle.manifest_sha256),
            bundle.version
        );
    }
    Ok(Verdict::Downgrade { highest, signer })
}

/// Remember `bundle` as the newest run. Writes only when the version rises: after a
/// permitted downgrade the highest stays where it was, so the permit allows exactly its
/// bundle and nothing between it and the highest.
pub fn record(path: &Path, bundle: Candidate, verdict: &Verdict) -> Result<()> {
    let highest = match verdict {
        Verdict::Current { highest } | Verdict::Downgrade { highest, .. } => *highest,
    };
    if bundle.version <= highest {
        return Ok(());
    }
    let s = DeviceState {
        format_version: 1,
        highest_bundle_version: bundle.version,
        bundle_sha256: bundle.manifest_sha256.to_string(),
        time_ms: crate::camera::wall_ms_now(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {} for the device state", dir.display()))?;
    }
    let bytes = serde_json::to_vec_pretty(&s).expect("state serialises");
    fas_core::atomic::write_atomic_private(path, &bytes).with_context(|| {
        format!(
            "writing device state {} — set device.state to a writable place",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fas_infer::bundle::permit::Permit;
    use fas_infer::bundle::SecretKey;

    #[test]
    fn refuses_rollback_without_a_permit_for_that_bundle() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("state.json");
        let key = SecretKey::from_seed([8; 32]);
        let keys = TrustedKeys::single(key.public());
        let none = Revocations::default();
        let (v1, v3) = ("11".repeat(32), "33".repeat(32));
        let c = |version, sha| Candidate {
            version,
            manifest_sha256: sha,
        };
        // First start: version 3 is recorded.
        let v = check(&state, c(3, &v3), None, &keys, &none).unwrap();
        assert_eq!(v, Verdict::Current { highest: 0 });
        record(&state, c(3, &v3), &v).unwrap();
        assert_eq!(read(&state).unwrap().unwrap().highest_bundle_version, 3);
        // Version 1 afterwards: refused.
        let e = format!(
            "{:#}",
            check(&state, c(1, &v1), None, &keys, &none).unwrap_err()
        );
        assert!(e.contains("older than version 3"), "{e}");
        // A permit for another bundle does not help.
        let permit = d.path().join("permit.json");
        let write = |p: &Permit, k: &SecretKey| {
            std::fs::write(&permit, serde_json::to_vec(&p.clone().sign(k)).unwrap()).unwrap()
        };
        write(&Permit::downgrade(&"22".repeat(32), 1), &key);
        let e = format!(
            "{:#}",
            check(&state, c(1, &v1), Some(&permit), &keys, &none).unwrap_err()
        );
        assert!(e.contains("not this one"), "{e}");
        // Nor one signed by an untrusted key.
        write(&Permit::downgrade(&v1, 1), &SecretKey::from_seed([9; 32]));
        let e = format!(
            "{:#}",
            check(&state, c(1, &v1), Some(&permit), &keys, &none).unwrap_err()
        );
        assert!(e.contains("does not trust"), "{e}");
        // The operator's permit for exactly this bundle: allowed; the highest stays 3, so
        // the permit does not open the way for version 2.
        write(&Permit::downgrade(&v1, 1), &key);
        let v = check(&state, c(1, &v1), Some(&permit), &keys, &none).unwrap();
        assert!(matches!(v, Verdict::Downgrade { highest: 3, .. }), "{v:?}");
        record(&state, c(1, &v1), &v).unwrap();
        assert_eq!(read(&state).unwrap().unwrap().highest_bundle_version, 3);
        let v2 = "22".repeat(32);
        let e = format!(
            "{:#}",
            check(&state, c(2, &v2), Some(&permit), &keys, &none).unwrap_err()
        );
        assert!(e.contains("not this one"), "{e}");
        // A permit signed by a revoked key is refused.
        let revoked = Revocations::parse(&format!("key {}\n", key.id())).unwrap();
        let e = format!(
            "{:#}",
            check(&state, c(1, &v1), Some(&permit), &keys, &revoked).unwrap_err()
        );
        assert!(e.contains("revocation list revokes"), "{e}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&state).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A corrupt state file stops the door instead of resetting protection.
        std::fs::write(&state, b"{\"highest").unwrap();
        let e = format!(
            "{:#}",
            check(&state, c(3, &v3), None, &keys, &none).unwrap_err()
        );
        assert!(e.contains("corrupt"), "{e}");
    }
}
