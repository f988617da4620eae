//! The revocation list (`model.revoked`, default `/etc/fas/revoked`): signing keys and
//! bundles an operator has withdrawn, one per line —
//!
//! ```text
//! # a leaked release key, and a bundle with a known bypass
//! key 0123456789abcdef
//! bundle 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! ```
//!
//! `key` takes a key id (16 hex digits, `fas-quantize verify` prints it), `bundle` the
//! sha256 of a bundle's `manifest.json` (`fas-quantize inspect` prints it). A missing file
//! revokes nothing; a file that does not parse stops the door (fail closed).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use fas_core::audit::is_sha256_hex;
use fas_infer::bundle::keys::is_key_id;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    pub keys: BTreeSet<String>,
    pub bundles: BTreeSet<String>,
}

impl Revocations {
    /// The list at `path` (empty when there is no such file).
    pub fn load(path: &Path) -> Result<Revocations> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("reading revocation list {}", path.display()))
            }
        };
        Self::parse(&text).with_context(|| format!("revocation list {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Revocations> {
        let mut r = Revocations::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = i + 1;
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["key", id] if is_key_id(id) => {
                    r.keys.insert(id.to_string());
                }
                ["bundle", sha] if is_sha256_hex(sha) => {
                    r.bundles.insert(sha.to_string());
                }
                ["key", id] => bail!("line {n}: {id:?} is not a key id (16 lowercase hex digits)"),
                ["bundle", sha] => {
                    bail!("line {n}: {sha:?} is not a sha256 (64 lowercase hex digits)")
                }
                _ => {
                    bail!("line {n}: {line:?} is not `key <key id>` or `bundle <manifest sha256>`")
                }
            }
        }
        Ok(r)
    }

    /// Refuse a bundle that is revoked or signed by a revoked key.
    pub fn check(&self, manifest_sha256: &str, signer: Option<&str>) -> Result<()> {
        if self.bundles.contains(manifest_sha256) {
            bail!("bundle {manifest_sha256} is revoked by the revocation list — install a newer bundle");
        }
        if let Some(k) = signer.filter(|k| self.keys.contains(*k)) {
            bail!("the bundle is signed by key {k}, which the revocation list revokes — install a bundle signed by a current key");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_revoked() {
        let sha = "9f".repeat(32);
        let r = Revocations::parse(&format!(
            "# comment\n\nkey 0123456789abcdef\nbundle {sha}\n"
        ))
        .unwrap();
        assert!(r.check(&sha, None).is_err());
        assert!(r.check(&"00".repeat(32), Some("0123456789abcdef")).is_err());
        assert!(r.check(&"00".repeat(32), Some("fedcba9876543210")).is_ok());
        for bad in [
            "key 0123",
            "bundle xyz",
            "revoke everything",
            "key A123456789ABCDEF",
        ] {
            let e = Revocations::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("line 1:"), "{bad}: {e}");
        }
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            Revocations::load(&d.path().join("none")).unwrap(),
            Revocations::default()
        );
    }
}
