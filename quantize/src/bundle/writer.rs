//! Writing bundles: fill a draft manifest's file hashes, pack a deterministic tar, sign it,
//! replace the destination atomically and re-open it with fas-infer's verifier.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fas_core::bundle::{
    sha256_hex, BundleError, BundleManifest, BUNDLE_FORMAT_VERSION, DETECTOR_FILE, LIVENESS_FILE,
    MANIFEST_FILE, SIGNATURE_FILE,
};
use fas_infer::bundle::{
    Bundle, BundleLoadError, ManifestSignature, TrustedKeys, MAX_BUNDLE_BYTES,
};

use super::SecretKey;

/// How a bundle is signed.
#[derive(Debug, Clone, Copy)]
pub enum Signing<'a> {
    Key(&'a SecretKey),
    /// No `manifest.sig`: loads only on the edge's development path.
    Unsigned,
}

/// Why a bundle was not written (or, for [`WriteError::Verify`], did not verify after it
/// was written and was removed).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("draft manifest: {0}")]
    Draft(BundleError),
    #[error("draft manifest: field \"files.{name}\": {problem} — {fix}")]
    DraftFiles {
        name: String,
        problem: String,
        fix: String,
    },
    #[error("the bundle's content would be {size} bytes, over the {MAX_BUNDLE_BYTES}-byte limit a device reads — pack only the liveness model and its detector")]
    TooLarge { size: u64 },
    #[error("{}: cannot write the bundle — check that the directory exists and is writable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the written bundle does not verify")]
    Verify(#[source] BundleLoadError),
}

/// Parse a draft `manifest.json`: like [`BundleManifest::from_json`] but not validated, and
/// `files` may be missing (the writer fills it in).
pub fn parse_draft(bytes: &[u8]) -> Result<BundleManifest, BundleError> {
    let json = |e: serde_json::Error| BundleError::Json { msg: e.to_string() };
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(json)?;
    if let Some(v) = value.get("format_version").and_then(|v| v.as_u64()) {
        if v > u64::from(BUNDLE_FORMAT_VERSION) {
            return Err(BundleError::FutureVersion {
                found: v,
                supported: BUNDLE_FORMAT_VERSION,
            });
        }
    }
    if let Some(obj) = value.as_object_mut() {
        obj.entry("files")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
    }
    serde_json::from_value(value).map_err(json)
}

/// Record the sha256 of every file to be packed in `draft.files`. An entry the draft
/// already has must match; one for a file that is not packed is an error.
pub fn fill_files(
    draft: &mut BundleManifest,
    liveness: &[u8],
    detector: Option<&[u8]>,
) -> Result<(), WriteError> {
    let mut packed = BTreeMap::new();
    packed.insert(LIVENESS_FILE.to_string(), sha256_hex(liveness));
    if let Some(d) = detector {
        packed.insert(DETECTOR_FILE.to_string(), sha256_hex(d));
    }
    for (name, hash) in &draft.files {
        match packed.get(name) {
            None => {
                return Err(WriteError::DraftFiles {
                    name: name.clone(),
                    problem: "lists a file that is not being packed".into(),
                    fix: if name == DETECTOR_FILE {
                        "pass the detector model, or remove it from the draft".into()
                    } else {
                        "remove it from the draft (its \"files\" may be left empty)".into()
                    },
                })
            }
            Some(actual) if actual != hash => {
                return Err(WriteError::DraftFiles {
                    name: name.clone(),
                    problem: format!("records sha256 {hash}, but the file given has {actual}"),
                    fix: "pass the model the draft was written for, or leave \"files\" empty"
                        .into(),
                })
            }
            Some(_) => {}
        }
    }
    draft.files = packed;
    Ok(())
}

/// The bundle tar: `manifest.json` first, then the other entries sorted by name; ustar
/// headers with mode 0644, mtime 0, uid/gid 0 and no user names, so equal inputs give
/// equal bytes.
pub fn pack(
    manifest_json: &[u8],
    files: &BTreeMap<String, Vec<u8>>,
    signature: Option<&ManifestSignature>,
) -> Vec<u8> {
    let sig = signature.map(ManifestSignature::to_json);
    let mut rest: BTreeMap<&str, &[u8]> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    if let Some(s) = &sig {
        rest.insert(SIGNATURE_FILE, s);
    }
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in std::iter::once((MANIFEST_FILE, manifest_json)).chain(rest) {
        let mut h = tar::Header::new_ustar();
        h.set_path(name)
            .expect("bundle entry names are short plain names");
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append(&h, data).expect("writing to memory cannot fail");
    }
    tar.into_inner().expect("writing to memory cannot fail")
}

/// Write a bundle to `out`: fill the draft's hashes ([`fill_files`]), validate it, pack,
/// sign, check the bytes with fas-infer's verifier, replace `out` atomically and verify the
/// file as a device would read it. Returns the verified bundle.
pub fn write_bundle(
    out: &Path,
    mut draft: BundleManifest,
    liveness: &[u8],
    detector: Option<&[u8]>,
    signing: Signing<'_>,
) -> Result<Bundle, WriteError> {
    fill_files(&mut draft, liveness, detector)?;
    draft.validate().map_err(WriteError::Draft)?;
    let manifest_json = draft.to_canonical_json();
    let mut files = BTreeMap::new();
    files.insert(LIVENESS_FILE.to_string(), liveness.to_vec());
    if let Some(d) = detector {
        files.insert(DETECTOR_FILE.to_string(), d.to_vec());
    }
    write_packed(out, &manifest_json, &files, signing)
}

/// Re-sign an existing bundle with `key`, replacing its `manifest.sig` (if any). The bundle
/// must otherwise be intact (structure, manifest, hashes); its `manifest.json` bytes are
/// kept exactly. Returns the bundle as verified with `key`.
pub fn sign_bundle(path: &Path, key: &SecretKey) -> Result<Bundle, WriteError> {
    let old = Bundle::open_unverified(path).map_err(WriteError::Verify)?;
    write_packed(path, &old.manifest_json, &old.files, Signing::Key(key))
}

fn write_packed(
    out: &Path,
    manifest_json: &[u8],
    files: &BTreeMap<String, Vec<u8>>,
    signing: Signing<'_>,
) -> Result<Bundle, WriteError> {
    let signature = match signing {
        Signing::Key(k) => Some(k.sign_manifest(manifest_json)),
        Signing::Unsigned => None,
    };
    let size = manifest_json.len() as u64
        + files.values().map(|d| d.len() as u64).sum::<u64>()
        + signature.as_ref().map_or(0, |s| s.to_json().len() as u64);
    if size > MAX_BUNDLE_BYTES {
        return Err(WriteError::TooLarge { size });
    }
    let bytes = pack(manifest_json, files, signature.as_ref());
    let origin = out.display().to_string();
    let keys = match signing {
        Signing::Key(k) => Some(TrustedKeys::single(k.public())),
        Signing::Unsigned => None,
    };
    let verify_bytes = |bytes: &[u8]| match &keys {
        Some(keys) => Bundle::from_bytes(bytes, keys, &origin),
        None => Bundle::from_bytes_unverified(bytes, &origin),
    };
    verify_bytes(&bytes).map_err(WriteError::Verify)?;
    fas_core::atomic::write_atomic(out, &bytes).map_err(|source| WriteError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    // Read back what the disk holds, exactly as a device will.
    let reread = match &keys {
        Some(keys) => Bundle::open(out, keys),
        None => Bundle::open_unverified(out),
    };
    match reread {
        Ok(b) if b.manifest_json == manifest_json && &b.files == files => Ok(b),
        Ok(_) => {
            let _ = std::fs::remove_file(out);
            Err(WriteError::Io {
                path: out.to_path_buf(),
                source: std::io::Error::other("the file read back differs from what was written"),
            })
        }
        Err(e) => {
            let _ = std::fs::remove_file(out);
            Err(WriteError::Verify(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fas_core::bundle::{
        Calibration, DType, Drift, Encoding, InputSpec, MetricEntry, ModelInfo, Quantization,
        ScoreSpec, Threshold,
    };
    use fas_core::preprocess::{ColorSpace, CropSpec, Normalize, PreprocessSpec};
    use fas_infer::bundle::LoadErrorKind;

    fn draft() -> BundleManifest {
        BundleManifest {
            format_version: BUNDLE_FORMAT_VERSION,
            model: ModelInfo {
                name: "writer-test".into(),
                recipe: "dlif".into(),
                demo: false,
            },
            input: InputSpec {
                shape: vec![1, 3, 64, 64],
                dtype: DType::F32,
            },
            preprocess: PreprocessSpec {
                crop: CropSpec::Box { scale: 1.5 },
                width: 64,
                height: 64,
                color: vec![ColorSpace::Rgb],
                normalize: Normalize::imagenet(1),
            },
            score: ScoreSpec::default(),
            files: BTreeMap::new(),
            quantization: Quantization {
                encoding: Encoding::Int8Qdq,
                calibration: Some(Calibration {
                    method: "entropy".into(),
                    samples: 256,
                }),
                drift: Some(Drift {
                    max_abs: 0.01,
                    mean_abs: 0.002,
                    auc_fp32: 0.97,
                    auc_int8: 0.969,
                }),
            },
            metrics: vec![MetricEntry {
                protocol: "SynthFAS".into(),
                metric: "AUC".into(),
                value: 0.97,
            }],
            thresholds: vec![Threshold {
                name: "default".into(),
                value: 0.5,
                operating_point: "EER".into(),
                chosen_on: "SynthFAS dev".into(),
            }],
            bundle_version: 1,
            not_after: None,
            threshold_floor: None,
            detector_sha256: vec![],
            created_by: "fas-quantize test".into(),
        }
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fas-qwriter-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writes_a_verified_deterministic_bundle() {
        let d = tempdir("write");
        let key = SecretKey::from_seed([3; 32]);
        let a = d.join("a.fasb");
        let b = write_bundle(&a, draft(), b"live", Some(b"det"), Signing::Key(&key)).unwrap();
        assert_eq!(b.signer.as_deref(), Some(key.id().as_str()));
        assert_eq!(b.manifest.files[LIVENESS_FILE], sha256_hex(b"live"));
        assert_eq!(b.detector(), Some(&b"det"[..]));
        let bytes = std::fs::read(&a).unwrap();
        // Same inputs, same bytes (ed25519 signatures are deterministic).
        let a2 = d.join("a2.fasb");
        write_bundle(&a2, draft(), b"live", Some(b"det"), Signing::Key(&key)).unwrap();
        assert_eq!(std::fs::read(&a2).unwrap(), bytes);
        // manifest.json is the first entry; the tar crate lists the rest sorted.
        let mut ar = tar::Archive::new(bytes.as_slice());
        let names: Vec<(String, u32, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (MANIFEST_FILE.to_string(), 0o644, 0),
                (DETECTOR_FILE.to_string(), 0o644, 0),
                (LIVENESS_FILE.to_string(), 0o644, 0),
                (SIGNATURE_FILE.to_string(), 0o644, 0),
            ]
        );
        let leftovers = std::fs::read_dir(&d).unwrap().count();
        assert_eq!(leftovers, 2, "no temporary files left");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn unsigned_bundles_load_only_unverified() {
        let d = tempdir("unsigned");
        let p = d.join("dev.fasb");
        let b = write_bundle(&p, draft(), b"live", None, Signing::Unsigned).unwrap();
        assert_eq!(b.signer, None);
        let e = Bundle::open(&p, &TrustedKeys::new()).unwrap_err();
        assert!(matches!(e.kind, LoadErrorKind::MissingFile { .. }), "{e}");
        // Signing it afterwards keeps manifest.json byte for byte.
        let key = SecretKey::from_seed([4; 32]);
        let signed = sign_bundle(&p, &key).unwrap();
        assert_eq!(signed.manifest_json, b.manifest_json);
        let again = Bundle::open(&p, &TrustedKeys::single(key.public())).unwrap();
        assert_eq!(again.signer.as_deref(), Some(key.id().as_str()));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn draft_files_must_match_what_is_packed() {
        let mut m = draft();
        m.files
            .insert(LIVENESS_FILE.into(), sha256_hex(b"other model"));
        let e = fill_files(&mut m, b"live", None).unwrap_err();
        assert!(e.to_string().contains("files.liveness.onnx"), "{e}");
        let mut m = draft();
        m.files.insert(DETECTOR_FILE.into(), sha256_hex(b"det"));
        let e = fill_files(&mut m, b"live", None).unwrap_err();
        assert!(e.to_string().contains("pass the detector"), "{e}");
        let mut m = draft();
        m.files.insert(LIVENESS_FILE.into(), sha256_hex(b"live"));
        fill_files(&mut m, b"live", Some(b"d")).unwrap();
        assert_eq!(m.files.len(), 2);
    }

    #[test]
    fn invalid_draft_writes_nothing() {
        let d = tempdir("invalid");
        let p = d.join("x.fasb");
        let mut m = draft();
        m.thresholds[0].value = 2.0;
        let e = write_bundle(&p, m, b"live", None, Signing::Unsigned).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("draft manifest: manifest.json: field \"thresholds[0].value\""),
            "{e}"
        );
        assert!(!p.exists());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn parse_draft_accepts_missing_files_and_rejects_the_future() {
        let mut v = serde_json::to_value(draft()).unwrap();
        v.as_object_mut().unwrap().remove("files");
        let m = parse_draft(v.to_string().as_bytes()).unwrap();
        assert!(m.files.is_empty());
        v["format_version"] = (BUNDLE_FORMAT_VERSION + 1).into();
        assert!(matches!(
            parse_draft(v.to_string().as_bytes()),
            Err(BundleError::FutureVersion { .. })
        ));
        assert!(matches!(parse_draft(b"[]"), Err(BundleError::Json { .. })));
    }
}
