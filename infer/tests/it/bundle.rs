//! Loading `.fasb` bundles: every refusal on real tars (built with the `tar` crate, an
//! implementation independent of the reader), and a property test that mutated bundles
//! never load with changed content and never panic the reader.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};
use fas_core::bundle::{
    sha256_hex, BundleError, BundleManifest, Calibration, DType, Drift, InputSpec, MetricEntry,
    ModelInfo, Quantization, ScoreSpec, Threshold, BUNDLE_FORMAT_VERSION, DETECTOR_FILE,
    LIVENESS_FILE, MANIFEST_FILE, SIGNATURE_FILE,
};
use fas_core::preprocess::{ColorSpace, CropSpec, Normalize, PreprocessSpec};
use fas_infer::bundle::keys::key_id;
use fas_infer::bundle::{
    Bundle, LoadErrorKind, ManifestSignature, PublicKey, TrustedKeys, MAX_BUNDLE_BYTES,
    MAX_FILE_BYTES,
};
use proptest::prelude::*;

const ORIGIN: &str = "/srv/door/model.fasb";
const LIVENESS: &[u8] = b"\x08\x07liveness-model-bytes";
const DETECTOR: &[u8] = b"\x08\x07detector-model-bytes, a little longer than the other";

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn public(sk: &SigningKey) -> PublicKey {
    PublicKey::from_bytes(&sk.verifying_key().to_bytes()).unwrap()
}

fn trusted(sk: &SigningKey) -> TrustedKeys {
    TrustedKeys::single(public(sk))
}

fn manifest(liveness: &[u8], detector: Option<&[u8]>) -> BundleManifest {
    let mut files = BTreeMap::new();
    files.insert(LIVENESS_FILE.to_string(), sha256_hex(liveness));
    if let Some(d) = detector {
        files.insert(DETECTOR_FILE.to_string(), sha256_hex(d));
    }
    BundleManifest {
        format_version: BUNDLE_FORMAT_VERSION,
        model: ModelInfo {
            name: "minifasnet-test".into(),
            recipe: "baseline".into(),
            demo: true,
        },
        input: InputSpec {
            shape: vec![1, 3, 80, 80],
            dtype: DType::F32,
        },
        preprocess: PreprocessSpec {
            crop: CropSpec::Aligned { scale: 2.7 },
            width: 80,
            height: 80,
            color: vec![ColorSpace::Rgb],
            normalize: Normalize {
                mean: vec![0.485, 0.456, 0.406],
                std: vec![0.229, 0.224, 0.225],
            },
        },
        score: ScoreSpec::default(),
        files,
        quantization: Quantization {
            encoding: fas_core::bundle::Encoding::Int8Qdq,
            calibration: Some(Calibration {
                method: "minmax".into(),
                samples: 64,
            }),
            drift: Some(Drift {
                max_abs: 0.02,
                mean_abs: 0.003,
                auc_fp32: 0.99,
                auc_int8: 0.988,
            }),
        },
        metrics: vec![MetricEntry {
            protocol: "SynthFAS LOO".into(),
            metric: "HTER".into(),
            value: 0.05,
        }],
        thresholds: vec![Threshold {
            name: "default".into(),
            value: 0.6,
            operating_point: "EER".into(),
            chosen_on: "SynthFAS dev".into(),
        }],
        bundle_version: 1,
        not_after: None,
        threshold_floor: None,
        detector_sha256: vec![],
        created_by: "fas-infer tests".into(),
    }
}

fn sig_json(sk: &SigningKey, manifest_json: &[u8]) -> Vec<u8> {
    let id = key_id(&sk.verifying_key().to_bytes());
    ManifestSignature::new(&id, &sk.sign(manifest_json).to_bytes()).to_json()
}

/// A plain ustar tar of regular files, as `fas-quantize` writes it.
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Entries of a correctly signed bundle (manifest first).
fn signed_entries(sk: &SigningKey, detector: bool) -> Vec<(String, Vec<u8>)> {
    let det = detector.then_some(DETECTOR);
    let m = manifest(LIVENESS, det).to_canonical_json();
    let mut v = vec![(MANIFEST_FILE.to_string(), m.clone())];
    if let Some(d) = det {
        v.push((DETECTOR_FILE.to_string(), d.to_vec()));
    }
    v.push((LIVENESS_FILE.to_string(), LIVENESS.to_vec()));
    v.push((SIGNATURE_FILE.to_string(), sig_json(sk, &m)));
    v
}

fn tar_owned(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let refs: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    tar_of(&refs)
}

fn signed_bundle(sk: &SigningKey, detector: bool) -> Vec<u8> {
    tar_owned(&signed_entries(sk, detector))
}

/// A bundle whose manifest is `m` (serialised as given), correctly signed.
fn bundle_with_manifest_json(sk: &SigningKey, m: &[u8]) -> Vec<u8> {
    tar_of(&[
        (MANIFEST_FILE, m),
        (LIVENESS_FILE, LIVENESS),
        (SIGNATURE_FILE, &sig_json(sk, m)),
    ])
}

fn load_err(bytes: &[u8], keys: &TrustedKeys) -> LoadErrorKind {
    let e = Bundle::from_bytes(bytes, keys, ORIGIN).unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with(&format!("bundle {ORIGIN}: ")), "{s}");
    assert!(s.contains(" — "), "every message carries a fix: {s}");
    e.kind
}

/// A fresh directory, removed when the returned guard drops.
fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("fas-bundle-test-{tag}-"))
        .tempdir()
        .unwrap()
}

#[test]
fn valid_bundle_loads_with_signer_and_files() {
    let sk = signing_key(1);
    for detector in [false, true] {
        let bytes = signed_bundle(&sk, detector);
        let b = Bundle::from_bytes(&bytes, &trusted(&sk), ORIGIN).unwrap();
        assert_eq!(b.signer.as_deref(), Some(public(&sk).id()));
        assert_eq!(b.liveness(), LIVENESS);
        assert_eq!(b.detector(), detector.then_some(DETECTOR));
        assert_eq!(b.manifest, manifest(LIVENESS, detector.then_some(DETECTOR)));
        assert_eq!(b.manifest_sha256, sha256_hex(&b.manifest_json));
        assert_eq!(b.manifest_json, b.manifest.to_canonical_json());
        let dbg = format!("{b:?}");
        assert!(
            dbg.contains(&format!("\"liveness.onnx\": {}", LIVENESS.len())),
            "{dbg}"
        );
        assert_eq!(b.signature.unwrap().key_id, public(&sk).id());
    }
    // Entry order is not part of the format; GNU-magic headers are read too.
    let mut e = signed_entries(&sk, true);
    e.reverse();
    let reversed = tar_owned(&e);
    assert!(Bundle::from_bytes(&reversed, &trusted(&sk), ORIGIN).is_ok());
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in signed_entries(&sk, false) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, &name, data.as_slice()).unwrap();
    }
    let gnu = b.into_inner().unwrap();
    assert!(Bundle::from_bytes(&gnu, &trusted(&sk), ORIGIN).is_ok());
}

#[test]
fn open_reads_files_and_trusted_key_directories() {
    let d_dir = tempdir("open");
    let d = d_dir.path();
    let sk = signing_key(2);
    let path = d.join("door.fasb");
    std::fs::write(&path, signed_bundle(&sk, false)).unwrap();
    let keys_dir = d.join("keys");
    std::fs::create_dir(&keys_dir).unwrap();
    std::fs::write(keys_dir.join("release.pub"), public(&sk).to_text()).unwrap();
    let keys = TrustedKeys::load(&keys_dir).unwrap();
    let b = Bundle::open(&path, &keys).unwrap();
    assert_eq!(b.signer.as_deref(), Some(public(&sk).id()));

    let e = Bundle::open(&d.join("absent.fasb"), &keys).unwrap_err();
    assert!(matches!(e.kind, LoadErrorKind::Io { .. }));
    assert!(e.to_string().contains("absent.fasb"), "{e}");

    // A file over the cap is refused before it is read (sparse: costs no disk).
    let big = d.join("big.fasb");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(MAX_FILE_BYTES + 1)
        .unwrap();
    let e = Bundle::open(&big, &keys).unwrap_err();
    assert!(
        matches!(e.kind, LoadErrorKind::Oversized { name: None, .. }),
        "{e}"
    );
}

#[test]
fn bad_signature() {
    let sk = signing_key(3);
    // The manifest changed after signing (the model name), hashes still fine.
    let mut m = manifest(LIVENESS, None);
    let signed = m.to_canonical_json();
    m.model.name = "another-model".into();
    let changed = m.to_canonical_json();
    let bytes = tar_of(&[
        (MANIFEST_FILE, &changed),
        (LIVENESS_FILE, LIVENESS),
        (SIGNATURE_FILE, &sig_json(&sk, &signed)),
    ]);
    match load_err(&bytes, &trusted(&sk)) {
        LoadErrorKind::BadSignature { key_id } => assert_eq!(key_id, public(&sk).id()),
        other => panic!("{other}"),
    }
    // Signed by another key that claims the trusted key's id.
    let mallory = signing_key(4);
    let sig = ManifestSignature::new(public(&sk).id(), &mallory.sign(&signed).to_bytes());
    let bytes = tar_of(&[
        (MANIFEST_FILE, &signed),
        (LIVENESS_FILE, LIVENESS),
        (SIGNATURE_FILE, &sig.to_json()),
    ]);
    assert!(matches!(
        load_err(&bytes, &trusted(&sk)),
        LoadErrorKind::BadSignature { .. }
    ));
    // Same manifest content, different bytes (pretty-printed): the signature is over bytes.
    let pretty = manifest(LIVENESS, None).to_json_pretty();
    let bytes = tar_of(&[
        (MANIFEST_FILE, pretty.as_bytes()),
        (LIVENESS_FILE, LIVENESS),
        (SIGNATURE_FILE, &sig_json(&sk, &signed)),
    ]);
    assert!(matches!(
        load_err(&bytes, &trusted(&sk)),
        LoadErrorKind::BadSignature { .. }
    ));
}

#[test]
fn unknown_key_names_the_key_and_where_keys_were_looked_for() {
    let d_dir = tempdir("unknown");
    let d = d_dir.path();
    let signer = signing_key(5);
    let other = signing_key(6);
    let pub_path = d.join("site.pub");
    std::fs::write(&pub_path, public(&other).to_text()).unwrap();
    let keys = TrustedKeys::load(&pub_path).unwrap();
    let e = Bundle::from_bytes(&signed_bundle(&signer, false), &keys, ORIGIN).unwrap_err();
    match &e.kind {
        LoadErrorKind::UnknownKey { key_id, looked_in } => {
            assert_eq!(key_id, public(&signer).id());
            assert!(looked_in.contains(&pub_path.display().to_string()));
        }
        other => panic!("{other}"),
    }
    let s = e.to_string();
    assert!(
        s.contains(public(&signer).id()) && s.contains("site.pub"),
        "{s}"
    );
    // No keys at all.
    assert!(matches!(
        load_err(&signed_bundle(&signer, false), &TrustedKeys::new()),
        LoadErrorKind::UnknownKey { .. }
    ));
}

#[test]
fn hash_mismatch_names_the_file() {
    let sk = signing_key(7);
    let mut e = signed_entries(&sk, true);
    for (name, data) in e.iter_mut() {
        if name == DETECTOR_FILE {
            data[3] ^= 1;
        }
    }
    match load_err(&tar_owned(&e), &trusted(&sk)) {
        LoadErrorKind::HashMismatch { name, expected, .. } => {
            assert_eq!(name, DETECTOR_FILE);
            assert_eq!(expected, sha256_hex(DETECTOR));
        }
        other => panic!("{other}"),
    }
    // Still checked on the development path.
    let err = Bundle::from_bytes_unverified(&tar_owned(&e), ORIGIN).unwrap_err();
    assert!(matches!(err.kind, LoadErrorKind::HashMismatch { .. }));
    assert!(err.to_string().contains("detector.onnx"), "{err}");
}

#[test]
fn missing_files() {
    let sk = signing_key(8);
    let full = signed_entries(&sk, true);
    let without = |drop: &str| {
        tar_owned(
            &full
                .iter()
                .filter(|(n, _)| n != drop)
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    for name in [MANIFEST_FILE, SIGNATURE_FILE, DETECTOR_FILE, LIVENESS_FILE] {
        match load_err(&without(name), &trusted(&sk)) {
            LoadErrorKind::MissingFile { name: n, fix } => {
                assert_eq!(n, name);
                assert!(!fix.is_empty());
            }
            other => panic!("{name}: {other}"),
        }
    }
    // An unsigned bundle is fine on the development path only.
    let unsigned = without(SIGNATURE_FILE);
    let b = Bundle::from_bytes_unverified(&unsigned, ORIGIN).unwrap();
    assert_eq!((b.signer, b.signature), (None, None));
    // A signed one loads there too, without a verified signer.
    let b = Bundle::from_bytes_unverified(&tar_owned(&full), ORIGIN).unwrap();
    assert_eq!(b.signer, None);
    assert_eq!(b.signature.unwrap().key_id, public(&sk).id());
}

#[test]
fn extra_and_unlisted_files() {
    let sk = signing_key(9);
    let mut e = signed_entries(&sk, false);
    e.push(("notes.txt".into(), b"hello".to_vec()));
    match load_err(&tar_owned(&e), &trusted(&sk)) {
        LoadErrorKind::UnexpectedEntry { name, .. } => assert_eq!(name, "notes.txt"),
        other => panic!("{other}"),
    }
    // A detector the signed manifest does not list.
    let mut e = signed_entries(&sk, false);
    e.push((DETECTOR_FILE.into(), DETECTOR.to_vec()));
    match load_err(&tar_owned(&e), &trusted(&sk)) {
        LoadErrorKind::UnexpectedEntry { name, reason } => {
            assert_eq!(name, DETECTOR_FILE);
            assert!(reason.contains("not listed"), "{reason}");
        }
        other => panic!("{other}"),
    }
    // A manifest that lists a file no bundle may carry.
    let mut m = manifest(LIVENESS, None);
    m.files.insert("extra.bin".into(), sha256_hex(b"x"));
    match load_err(
        &bundle_with_manifest_json(&sk, &m.to_canonical_json()),
        &trusted(&sk),
    ) {
        LoadErrorKind::ManifestInvalid(BundleError::Field { field, .. }) => {
            assert_eq!(field, "files.extra.bin")
        }
        other => panic!("{other}"),
    }
}

#[test]
fn duplicate_entry() {
    let sk = signing_key(10);
    let mut e = signed_entries(&sk, false);
    e.insert(1, (LIVENESS_FILE.into(), LIVENESS.to_vec()));
    match load_err(&tar_owned(&e), &trusted(&sk)) {
        LoadErrorKind::DuplicateEntry { name } => assert_eq!(name, LIVENESS_FILE),
        other => panic!("{other}"),
    }
}

#[test]
fn non_regular_entries_are_refused() {
    let sk = signing_key(11);
    let m = manifest(LIVENESS, None).to_canonical_json();
    let cases: Vec<(tar::EntryType, &str)> = vec![
        (tar::EntryType::Symlink, "symbolic link"),
        (tar::EntryType::Link, "hard link"),
        (tar::EntryType::Directory, "directory"),
        (tar::EntryType::Char, "character device"),
        (tar::EntryType::Block, "block device"),
        (tar::EntryType::Fifo, "FIFO"),
    ];
    for (ty, kind) in cases {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(m.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, MANIFEST_FILE, m.as_slice()).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(ty);
        h.set_size(0);
        if matches!(ty, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.set_link_name("/etc/shadow").unwrap();
        }
        h.set_path(LIVENESS_FILE).unwrap();
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        let bytes = b.into_inner().unwrap();
        match load_err(&bytes, &trusted(&sk)) {
            LoadErrorKind::NonRegularEntry { name, kind: k } => {
                assert_eq!((name.as_str(), k), (LIVENESS_FILE, kind))
            }
            other => panic!("{kind}: {other}"),
        }
    }
    // GNU long names and PAX records are not plain files either.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_cksum();
    b.append_data(&mut h, "x".repeat(120), &b"1"[..]).unwrap();
    assert!(matches!(
        load_err(&b.into_inner().unwrap(), &trusted(&sk)),
        LoadErrorKind::NonRegularEntry {
            kind: "GNU long-name record",
            ..
        }
    ));
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("path", &b"liveness.onnx"[..])])
        .unwrap();
    assert!(matches!(
        load_err(&b.into_inner().unwrap(), &trusted(&sk)),
        LoadErrorKind::NonRegularEntry {
            kind: "PAX extended header",
            ..
        }
    ));
}

#[test]
fn paths_must_be_plain_names() {
    let sk = signing_key(12);
    for bad in [
        "../liveness.onnx",
        "models/liveness.onnx",
        "./manifest.json",
        "/liveness.onnx",
        "..",
    ] {
        // The tar crate refuses such paths in set_path, so write the name field directly.
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..bad.len()].copy_from_slice(bad.as_bytes());
        h.set_size(LIVENESS.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, LIVENESS).unwrap();
        match load_err(&b.into_inner().unwrap(), &trusted(&sk)) {
            LoadErrorKind::PathNotPlain { name } => assert_eq!(name, bad),
            other => panic!("{bad}: {other}"),
        }
    }
    // A ustar prefix field makes a path with a directory.
    let mut h = tar::Header::new_ustar();
    h.set_path(format!("{}/{}", "d".repeat(120), LIVENESS_FILE))
        .unwrap();
    h.set_size(0);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, std::io::empty()).unwrap();
    assert!(matches!(
        load_err(&b.into_inner().unwrap(), &trusted(&sk)),
        LoadErrorKind::PathNotPlain { .. }
    ));
}

#[test]
fn manifest_from_the_future() {
    let sk = signing_key(13);
    let mut v = serde_json::to_value(manifest(LIVENESS, None)).unwrap();
    v["format_version"] = (BUNDLE_FORMAT_VERSION + 1).into();
    v["a_new_section"] = serde_json::json!({"x": 1});
    let m = serde_json::to_vec(&v).unwrap();
    match load_err(&bundle_with_manifest_json(&sk, &m), &trusted(&sk)) {
        LoadErrorKind::FutureVersion { found, supported } => {
            assert_eq!(found, u64::from(BUNDLE_FORMAT_VERSION) + 1);
            assert_eq!(supported, BUNDLE_FORMAT_VERSION);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn invalid_manifest_wraps_the_field_error() {
    let sk = signing_key(14);
    let mut m = manifest(LIVENESS, None);
    m.thresholds.clear();
    let e = Bundle::from_bytes(
        &bundle_with_manifest_json(&sk, &m.to_canonical_json()),
        &trusted(&sk),
        ORIGIN,
    )
    .unwrap_err();
    match &e.kind {
        LoadErrorKind::ManifestInvalid(inner) => assert_eq!(inner.field(), Some("thresholds")),
        other => panic!("{other}"),
    }
    assert!(
        e.to_string().starts_with(&format!(
            "bundle {ORIGIN}: manifest.json: field \"thresholds\""
        )),
        "{e}"
    );
    assert!(matches!(
        load_err(&bundle_with_manifest_json(&sk, b"{not json"), &trusted(&sk)),
        LoadErrorKind::ManifestInvalid(BundleError::Json { .. })
    ));
}

#[test]
fn malformed_signature_file() {
    let sk = signing_key(15);
    let m = manifest(LIVENESS, None).to_canonical_json();
    for sig in [
        &b"not json"[..],
        br#"{"algorithm":"rsa","key_id":"0123456789abcdef","signature":""}"#,
    ] {
        let bytes = tar_of(&[
            (MANIFEST_FILE, &m),
            (LIVENESS_FILE, LIVENESS),
            (SIGNATURE_FILE, sig),
        ]);
        assert!(matches!(
            load_err(&bytes, &trusted(&sk)),
            LoadErrorKind::SignatureMalformed { .. }
        ));
        assert!(Bundle::from_bytes_unverified(&bytes, ORIGIN).is_err());
    }
}

#[test]
fn truncated_corrupt_and_oversized_tars() {
    let sk = signing_key(16);
    let bytes = signed_bundle(&sk, true);
    for cut in [
        0,
        1,
        511,
        512,
        700,
        bytes.len() / 2,
        bytes.len() - 1024,
        bytes.len() - 1,
    ] {
        match load_err(&bytes[..cut], &trusted(&sk)) {
            LoadErrorKind::Truncated { len, .. } => assert_eq!(len, cut as u64),
            other => panic!("cut at {cut}: {other}"),
        }
    }
    let mut bad = bytes.clone();
    bad[600] ^= 0x01; // inside manifest.json's data
    assert!(matches!(
        load_err(&bad, &trusted(&sk)),
        LoadErrorKind::BadSignature { .. }
    ));
    let mut bad = bytes.clone();
    bad[10] ^= 0x55; // first header's name: checksum no longer matches
    assert!(matches!(
        load_err(&bad, &trusted(&sk)),
        LoadErrorKind::Corrupt { offset: 0, .. }
    ));
    let mut junk = bytes.clone();
    junk.extend_from_slice(&[0u8; 512]);
    junk.extend_from_slice(b"trailing junk");
    assert!(matches!(
        load_err(&junk, &trusted(&sk)),
        LoadErrorKind::Corrupt { .. }
    ));
    assert!(matches!(
        load_err(b"PK\x03\x04 a zip, not a tar", &trusted(&sk)),
        LoadErrorKind::Truncated { .. }
    ));
    // A header that claims more than the cap is refused before any data is needed.
    let mut h = tar::Header::new_ustar();
    h.set_path(LIVENESS_FILE).unwrap();
    h.set_size(MAX_BUNDLE_BYTES + 1);
    h.set_cksum();
    let mut huge = h.as_bytes().to_vec();
    huge.extend_from_slice(&[0; 1024]);
    match load_err(&huge, &trusted(&sk)) {
        LoadErrorKind::Oversized { name, size, limit } => {
            assert_eq!(name.as_deref(), Some(LIVENESS_FILE));
            assert_eq!((size, limit), (MAX_BUNDLE_BYTES + 1, MAX_BUNDLE_BYTES));
        }
        other => panic!("{other}"),
    }
}

/// How a valid bundle is changed in the property test.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Vec<(prop::sample::Index, u8)>),
    Truncate(prop::sample::Index),
    Append(Vec<u8>),
    Splice(prop::sample::Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8)
            .prop_map(Mutation::Flip),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..1200).prop_map(Mutation::Append),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..64)
        )
            .prop_map(|(i, v)| Mutation::Splice(i, v)),
    ]
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match m {
        Mutation::Flip(flips) => {
            for (i, x) in flips {
                out[i.index(bytes.len())] ^= x;
            }
        }
        Mutation::Truncate(i) => out.truncate(i.index(bytes.len())),
        Mutation::Append(junk) => out.extend_from_slice(junk),
        Mutation::Splice(i, v) => {
            let at = i.index(bytes.len());
            out.splice(at..at, v.iter().copied());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_bundles_never_load_changed_content(m in mutation(), detector in any::<bool>()) {
        let sk = signing_key(20);
        let keys = trusted(&sk);
        let original = signed_bundle(&sk, detector);
        let good = Bundle::from_bytes(&original, &keys, ORIGIN).unwrap();
        let mutated = apply(&original, &m);
        match Bundle::from_bytes(&mutated, &keys, ORIGIN) {
            // Only a change that leaves every file as it was (zero padding) may load.
            Ok(b) => {
                prop_assert_eq!(&b.manifest_json, &good.manifest_json);
                prop_assert_eq!(&b.files, &good.files);
                prop_assert_eq!(&b.signer, &good.signer);
            }
            Err(e) => prop_assert!(e.to_string().starts_with("bundle ")),
        }
        if let Mutation::Truncate(_) = m {
            prop_assert!(Bundle::from_bytes(&mutated, &keys, ORIGIN).is_err());
        }
        // The development path never panics and never loads a file that fails its hash.
        if let Ok(b) = Bundle::from_bytes_unverified(&mutated, ORIGIN) {
            for (name, data) in &b.files {
                prop_assert_eq!(&b.manifest.files[name], &sha256_hex(data));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let keys = trusted(&signing_key(21));
        prop_assert!(Bundle::from_bytes(&bytes, &keys, ORIGIN).is_err());
        let _ = Bundle::from_bytes_unverified(&bytes, ORIGIN);
    }
}

#[test]
fn open_unverified_reads_a_file() {
    let d_dir = tempdir("unverified");
    let d = d_dir.path();
    let p = d.join("dev.fasb");
    let sk = signing_key(22);
    let e: Vec<_> = signed_entries(&sk, false)
        .into_iter()
        .filter(|(n, _)| n != SIGNATURE_FILE)
        .collect();
    std::fs::write(&p, tar_owned(&e)).unwrap();
    let b = Bundle::open_unverified(&p).unwrap();
    assert_eq!(b.signer, None);
    assert_eq!(b.liveness(), LIVENESS);
    let e = Bundle::open(&p, &trusted(&sk)).unwrap_err();
    assert!(
        matches!(&e.kind, LoadErrorKind::MissingFile { name, .. } if name == SIGNATURE_FILE),
        "{e}"
    );
    assert!(e.to_string().contains(&p.display().to_string()));
    assert!(Path::new(&e.origin).ends_with("dev.fasb"));
}
