//! Reading and verifying signed model bundles (`*.fasb`, ARCHITECTURE.md contract 4).
//!
//! # Layout
//! A bundle is a plain, uncompressed ustar archive holding regular files with plain names
//! (no directories, links, long-name or PAX records), each once: `manifest.json`
//! ([`fas_core::bundle::BundleManifest`]), `liveness.onnx`, optionally `detector.onnx`,
//! and `manifest.sig`. `fas-quantize` writes them in that order (manifest first, then
//! sorted), mtime 0, mode 0644, uid/gid 0. Every file but the manifest and its signature
//! is listed in the manifest's `files` with its sha256, and nothing else may be in the tar.
//! The entries' contents add up to at most [`MAX_BUNDLE_BYTES`].
//!
//! # `manifest.sig`
//! `{"algorithm":"ed25519","key_id":"<16 hex>","signature":"<128 hex>"}`: an ed25519
//! signature over the exact bytes of `manifest.json` as stored in the tar, checked with
//! `verify_strict`. The hashes in the manifest then bind the model files to it.
//!
//! # Key files
//! A key id is the first 16 hex digits of the sha256 of the 32 raw public-key bytes.
//! `NAME.pub`: the line `fas-bundle-public-key ed25519 v1`, then the 32 public-key bytes
//! as 64 lowercase hex digits. `NAME.key` (mode 0600): the line
//! `fas-bundle-secret-key ed25519 v1`, then the 32-byte ed25519 seed as 64 lowercase hex
//! digits. A device trusts one `.pub` file or every `*.pub` in a directory
//! ([`TrustedKeys`]).
//!
//! # Trust fields (manifest format 2)
//! `bundle_version` (anti-rollback), `not_after` (expiry, Unix seconds),
//! `threshold_floor` (the lowest threshold a device may calibrate to) and
//! `detector_sha256` (the detectors a device may load from outside the bundle) are signed
//! with the rest of the manifest; a device enforces them (`fas-edge`'s `trust` module).
//! [`permit`] is the operator-signed downgrade permit; [`secret`] owns the `.key` files
//! (publishers' keys and a device's own key, which signs its calibration).
//!
//! # Loading
//! [`Bundle::open`] accepts a bundle only when its tar is well formed, its signature
//! verifies with a trusted key, its manifest is valid for this format version and every
//! file's hash matches. [`Bundle::open_unverified`] runs the same checks except the
//! signature's, for development only (the edge reaches it only through its
//! `--dev-unsigned-*` flag).

pub mod archive;
pub mod error;
pub mod keys;
pub mod permit;
pub mod secret;
pub mod signature;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use fas_core::bundle::{
    sha256_hex, BundleError, BundleManifest, DETECTOR_FILE, LIVENESS_FILE, MANIFEST_FILE,
    SIGNATURE_FILE,
};

pub use error::{BundleLoadError, LoadErrorKind};
pub use keys::{KeyError, PublicKey, TrustedKeys};
pub use secret::SecretKey;
pub use signature::ManifestSignature;

/// The most content (sum of entry sizes) a bundle may carry: 512 MiB.
pub const MAX_BUNDLE_BYTES: u64 = 512 << 20;
/// The largest `.fasb` file [`Bundle::open`] reads: the content cap plus room for headers
/// and record padding.
pub const MAX_FILE_BYTES: u64 = MAX_BUNDLE_BYTES + (64 << 10);

/// The files a bundle may carry besides the manifest and its signature.
pub const PAYLOAD_FILES: [&str; 2] = [LIVENESS_FILE, DETECTOR_FILE];

/// A bundle whose structure, manifest and hashes were checked (and, unless it came from
/// [`Bundle::open_unverified`], its signature). `Debug` shows file sizes, not contents.
#[derive(Clone)]
pub struct Bundle {
    pub manifest: BundleManifest,
    /// `manifest.json` exactly as stored (the signed bytes).
    pub manifest_json: Vec<u8>,
    /// sha256 hex of `manifest_json`: identifies the bundle in audit logs.
    pub manifest_sha256: String,
    /// The payload files (`liveness.onnx`, optionally `detector.onnx`), each hash-checked.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Id of the trusted key whose signature verified; `None` from the unverified path.
    pub signer: Option<String>,
    /// `manifest.sig` as found in the tar. Verified only when `signer` is `Some`; from the
    /// unverified path its `key_id` is just a claim.
    pub signature: Option<ManifestSignature>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: BTreeMap<&str, usize> = self
            .files
            .iter()
            .map(|(n, d)| (n.as_str(), d.len()))
            .collect();
        f.debug_struct("Bundle")
            .field("model", &self.manifest.model.name)
            .field("manifest_sha256", &self.manifest_sha256)
            .field("file_sizes", &sizes)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// Whether the signature must verify.
#[derive(Clone, Copy)]
enum Trust<'a> {
    Keys(&'a TrustedKeys),
    DevUnverified,
}

impl Bundle {
    /// Read and fully verify a bundle file.
    pub fn open(path: &Path, keys: &TrustedKeys) -> Result<Bundle, BundleLoadError> {
        let origin = path.display().to_string();
        let bytes = read_capped(path).map_err(|k| BundleLoadError::new(&origin, k))?;
        Bundle::load(&bytes, Trust::Keys(keys), &origin)
    }

    /// Fully verify a bundle held in memory; `origin` names it in errors.
    pub fn from_bytes(
        bytes: &[u8],
        keys: &TrustedKeys,
        origin: &str,
    ) -> Result<Bundle, BundleLoadError> {
        Bundle::load(bytes, Trust::Keys(keys), origin)
    }

    /// Development only: every check of [`Bundle::open`] except the signature (which may be
    /// absent; if present it must still be well formed). `signer` is `None`.
    pub fn open_unverified(path: &Path) -> Result<Bundle, BundleLoadError> {
        let origin = path.display().to_string();
        let bytes = read_capped(path).map_err(|k| BundleLoadError::new(&origin, k))?;
        Bundle::load(&bytes, Trust::DevUnverified, &origin)
    }

    /// [`Bundle::open_unverified`] for bytes in memory.
    pub fn from_bytes_unverified(bytes: &[u8], origin: &str) -> Result<Bundle, BundleLoadError> {
        Bundle::load(bytes, Trust::DevUnverified, origin)
    }

    /// `liveness.onnx`.
    pub fn liveness(&self) -> &[u8] {
        &self.files[LIVENESS_FILE]
    }

    /// `detector.onnx`, when the bundle has one.
    pub fn detector(&self) -> Option<&[u8]> {
        self.files.get(DETECTOR_FILE).map(Vec::as_slice)
    }

    fn load(bytes: &[u8], trust: Trust<'_>, origin: &str) -> Result<Bundle, BundleLoadError> {
        Bundle::check(bytes, trust).map_err(|kind| BundleLoadError::new(origin, kind))
    }

    fn check(bytes: &[u8], trust: Trust<'_>) -> Result<Bundle, LoadErrorKind> {
        let entries = archive::read_entries(bytes, MAX_BUNDLE_BYTES)?;
        let mut manifest_json = None;
        let mut sig_json = None;
        let mut files = BTreeMap::new();
        for e in entries {
            match e.name.as_str() {
                MANIFEST_FILE => manifest_json = Some(e.data),
                SIGNATURE_FILE => sig_json = Some(e.data),
                n if PAYLOAD_FILES.contains(&n) => {
                    files.insert(e.name, e.data);
                }
                _ => {
                    return Err(LoadErrorKind::UnexpectedEntry {
                        name: e.name,
                        reason: format!(
                        "is not a file a bundle may hold ({MANIFEST_FILE}, {}, {SIGNATURE_FILE})",
                        PAYLOAD_FILES.join(", ")
                    ),
                    })
                }
            }
        }
        let manifest_json = manifest_json.ok_or_else(|| LoadErrorKind::MissingFile {
            name: MANIFEST_FILE.into(),
            fix: "this is not a complete bundle; rebuild it with `fas-quantize bundle`".into(),
        })?;
        let signature = sig_json
            .map(|s| {
                ManifestSignature::from_json(s)
                    .map_err(|problem| LoadErrorKind::SignatureMalformed { problem })
            })
            .transpose()?;
        let signer = match trust {
            Trust::DevUnverified => None,
            Trust::Keys(keys) => {
                let sig = signature.as_ref().ok_or_else(|| LoadErrorKind::MissingFile {
                    name: SIGNATURE_FILE.into(),
                    fix: "the bundle is unsigned; sign it with `fas-quantize sign --bundle B --key K.key`, or run it with the development flag for unsigned bundles".into(),
                })?;
                let key = keys
                    .get(&sig.key_id)
                    .ok_or_else(|| LoadErrorKind::UnknownKey {
                        key_id: sig.key_id.clone(),
                        looked_in: keys.describe(),
                    })?;
                let raw = sig.signature_bytes().expect("checked by from_json");
                if !key.verify(manifest_json, &raw) {
                    return Err(LoadErrorKind::BadSignature {
                        key_id: sig.key_id.clone(),
                    });
                }
                Some(key.id().to_string())
            }
        };
        let manifest = BundleManifest::from_json(manifest_json)?;
        for name in manifest.files.keys() {
            if !PAYLOAD_FILES.contains(&name.as_str()) {
                return Err(LoadErrorKind::ManifestInvalid(BundleError::Field {
                    field: format!("files.{name}"),
                    problem: format!(
                        "names a file a bundle may not carry (only {})",
                        PAYLOAD_FILES.join(", ")
                    ),
                    fix: "rebuild the bundle with `fas-quantize bundle`".into(),
                }));
            }
            if !files.contains_key(name) {
                return Err(LoadErrorKind::MissingFile {
                    name: name.clone(),
                    fix: "manifest.json lists it; the bundle is incomplete — copy it again or rebuild it with `fas-quantize bundle`".into(),
                });
            }
        }
        let mut out = BTreeMap::new();
        for (name, data) in files {
            manifest.verify_file(&name, data)?;
            out.insert(name, data.to_vec());
        }
        Ok(Bundle {
            manifest_sha256: sha256_hex(manifest_json),
            manifest_json: manifest_json.to_vec(),
            manifest,
            files: out,
            signer,
            signature,
        })
    }
}

/// Read a bundle file, refusing one larger than [`MAX_FILE_BYTES`] before reading it.
fn read_capped(path: &Path) -> Result<Vec<u8>, LoadErrorKind> {
    let io = |source| LoadErrorKind::Io { source };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let too_big = |size| LoadErrorKind::Oversized {
        name: None,
        size,
        limit: MAX_FILE_BYTES,
    };
    if len > MAX_FILE_BYTES {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}
