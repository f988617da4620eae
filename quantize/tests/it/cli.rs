//! The `fas-quantize` binary end to end: keygen → bundle → verify → inspect → sign with a
//! second key → verify against each key → tampering caught. The payload is a real ONNX
//! model from `$FAS_ASSETS` (else `<workspace>/assets`); a missing asset fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fas_core::bundle::{sha256_hex, LIVENESS_FILE};
use fas_infer::bundle::PublicKey;

fn assets_dir() -> PathBuf {
    let dir = std::env::var_os("FAS_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets")));
    assert!(
        dir.is_dir(),
        "assets directory {} not found: run `cargo xtask assets` (or set FAS_ASSETS)",
        dir.display()
    );
    dir
}

fn asset(name: &str) -> PathBuf {
    let p = assets_dir().join(name);
    assert!(
        p.is_file(),
        "asset {} missing: run `cargo xtask assets`",
        p.display()
    );
    p
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fas-quantize-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fas_quantize(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fas-quantize"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("the fas-quantize binary runs")
}

fn ok(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let out = fas_quantize(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{:?} failed: {}\n{stdout}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs a command that must fail; returns its stderr.
fn fails(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let out = fas_quantize(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{:?} unexpectedly succeeded: {}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// A valid draft manifest with an empty `files` map (the writer fills it in).
fn write_draft(path: &Path) {
    let draft = serde_json::json!({
        "format_version": 1,
        "model": {"name": "pnet-as-liveness", "recipe": "baseline", "demo": true},
        "input": {"shape": [1, 6, 80, 80], "dtype": "f32"},
        "preprocess": {
            "crop": {"kind": "aligned", "scale": 2.7},
            "width": 80,
            "height": 80,
            "color": ["rgb", "hsv"],
            "normalize": {
                "mean": [0.485, 0.456, 0.406, 0.5, 0.5, 0.5],
                "std": [0.229, 0.224, 0.225, 0.5, 0.5, 0.5]
            }
        },
        "score": {"semantics": "p_live", "range": [0.0, 1.0]},
        "files": {},
        "quantization": {
            "encoding": "int8-qdq",
            "calibration": {"method": "minmax", "samples": 512},
            "drift": {"max_abs": 0.03, "mean_abs": 0.004, "auc_fp32": 0.991, "auc_int8": 0.989}
        },
        "metrics": [{"protocol": "OULU-NPU P1", "metric": "ACER", "value": 0.021}],
        "thresholds": [
            {"name": "default", "value": 0.62, "operating_point": "EER", "chosen_on": "OULU-NPU P1 dev"},
            {"name": "strict", "value": 0.87, "operating_point": "BPCER at APCER=1%", "chosen_on": "OULU-NPU P1 dev"}
        ],
        "created_by": "fas-quantize cli test"
    });
    std::fs::write(path, serde_json::to_vec_pretty(&draft).unwrap()).unwrap();
}

/// Byte offset of an entry's data in a tar (found with the `tar` crate).
fn data_offset(tar_bytes: &[u8], name: &str) -> usize {
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            return e.raw_file_position() as usize;
        }
    }
    panic!("{name} not in the tar");
}

#[test]
fn keygen_bundle_verify_inspect_sign_tamper() {
    let d = tempdir("flow");
    let model = asset("mtcnn_pnet.onnx");
    let detector = asset("mtcnn_rnet.onnx");
    let draft = d.join("draft.json");
    write_draft(&draft);
    let fasb = d.join("door.fasb");

    // Two key pairs, in separate directories so each can be trusted alone.
    let out = ok(&[&"keygen", &"--out", &d.join("keys-a/release")]);
    let a_pub = d.join("keys-a/release.pub");
    let a_key = d.join("keys-a/release.key");
    let a_id = PublicKey::load(&a_pub).unwrap().id().to_string();
    assert!(out.contains(&a_id), "{out}");
    let err = fails(&[&"keygen", &"--out", &d.join("keys-a/release")]);
    assert!(err.contains("already exists"), "{err}");
    ok(&[&"keygen", &"--out", &d.join("keys-b/rotated")]);
    let b_pub = d.join("keys-b/rotated.pub");
    let b_key = d.join("keys-b/rotated.key");
    let b_id = PublicKey::load(&b_pub).unwrap().id().to_string();
    assert_ne!(a_id, b_id);

    // Bundle, signed with key A.
    let out = ok(&[
        &"bundle",
        &"--manifest",
        &draft,
        &"--model",
        &model,
        &"--detector",
        &detector,
        &"--key",
        &a_key,
        &"--out",
        &fasb,
    ]);
    assert!(out.contains(&format!("signed by key {a_id}")), "{out}");

    // Verify with the .pub file and with its directory.
    let out = ok(&[&"verify", &"--bundle", &fasb, &"--keys", &a_pub]);
    assert!(out.starts_with("OK "), "{out}");
    assert!(
        out.contains(&a_id) && out.contains("pnet-as-liveness"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    ok(&[&"verify", &"--bundle", &fasb, &"--keys", &d.join("keys-a")]);

    // Inspect needs no keys.
    let model_bytes = std::fs::read(&model).unwrap();
    let text = ok(&[&"inspect", &"--bundle", &fasb]);
    for needle in [
        "pnet-as-liveness",
        "recipe baseline",
        "DEMO",
        "int8-qdq, calibrated with minmax on 512 face crops",
        "AUC fp32 0.991",
        "OULU-NPU P1 ACER = 0.021",
        "strict = 0.87 (BPCER at APCER=1%",
        "p_live in [0, 1]",
        "[1, 6, 80, 80] f32",
        &format!("yes, by key {a_id}"),
        &format!(
            "liveness.onnx  {} bytes  sha256 {}",
            model_bytes.len(),
            sha256_hex(&model_bytes)
        ),
        "detector.onnx",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(&[&"inspect", &"--bundle", &fasb, &"--json"])).unwrap();
    assert_eq!(json["signed"], true);
    assert_eq!(json["key_id"], a_id.as_str());
    assert_eq!(json["manifest"]["model"]["name"], "pnet-as-liveness");
    let files = json["files"].as_array().unwrap();
    let live = files.iter().find(|f| f["name"] == LIVENESS_FILE).unwrap();
    assert_eq!(live["size"], model_bytes.len());
    assert_eq!(live["sha256"], sha256_hex(&model_bytes).as_str());

    // Re-sign with key B: only B verifies it now.
    let out = ok(&[&"sign", &"--bundle", &fasb, &"--key", &b_key]);
    assert!(out.contains(&b_id), "{out}");
    let err = fails(&[&"verify", &"--bundle", &fasb, &"--keys", &a_pub]);
    assert!(
        err.contains(&b_id) && err.contains("not trusted") && err.contains("release.pub"),
        "{err}"
    );
    let out = ok(&[&"verify", &"--bundle", &fasb, &"--keys", &b_pub]);
    assert!(out.contains(&b_id), "{out}");

    // Tamper with one byte of liveness.onnx inside the tar.
    let mut bytes = std::fs::read(&fasb).unwrap();
    let at = data_offset(&bytes, LIVENESS_FILE) + 100;
    bytes[at] ^= 0x20;
    let tampered = d.join("tampered.fasb");
    std::fs::write(&tampered, &bytes).unwrap();
    let err = fails(&[&"verify", &"--bundle", &tampered, &"--keys", &b_pub]);
    assert!(
        err.contains("tampered.fasb")
            && err.contains("file \"liveness.onnx\" has sha256")
            && err.contains("altered"),
        "{err}"
    );
    // inspect refuses it too (hashes are checked without keys).
    let err = fails(&[&"inspect", &"--bundle", &tampered]);
    assert!(err.contains("liveness.onnx"), "{err}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn unsigned_bundles_and_argument_errors() {
    let d = tempdir("unsigned");
    let draft = d.join("draft.json");
    write_draft(&draft);
    let model = asset("mtcnn_pnet.onnx");
    let fasb = d.join("dev.fasb");
    let out = ok(&[
        &"bundle",
        &"--manifest",
        &draft,
        &"--model",
        &model,
        &"--unsigned",
        &"--out",
        &fasb,
    ]);
    assert!(out.contains("UNSIGNED"), "{out}");
    let text = ok(&[&"inspect", &"--bundle", &fasb]);
    assert!(text.contains("signed      NO"), "{text}");
    ok(&[&"keygen", &"--out", &d.join("k")]);
    let err = fails(&[&"verify", &"--bundle", &fasb, &"--keys", &d.join("k.pub")]);
    assert!(err.contains("has no \"manifest.sig\""), "{err}");

    // Exactly one of --key / --unsigned.
    let out = fas_quantize(&[
        &"bundle",
        &"--manifest",
        &draft,
        &"--model",
        &model,
        &"--out",
        &fasb,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = fas_quantize(&[
        &"bundle",
        &"--manifest",
        &draft,
        &"--model",
        &model,
        &"--unsigned",
        &"--key",
        &d.join("k.key"),
        &"--out",
        &fasb,
    ]);
    assert_eq!(out.status.code(), Some(2));

    // A draft that lists a wrong hash names the field; nothing is written.
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&draft).unwrap()).unwrap();
    v["files"]["liveness.onnx"] = sha256_hex(b"another model").into();
    std::fs::write(&draft, v.to_string()).unwrap();
    let other = d.join("other.fasb");
    let err = fails(&[
        &"bundle",
        &"--manifest",
        &draft,
        &"--model",
        &model,
        &"--unsigned",
        &"--out",
        &other,
    ]);
    assert!(
        err.contains("files.liveness.onnx") && err.contains("other.fasb"),
        "{err}"
    );
    assert!(!other.exists());
    // A world-readable secret key is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("k.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = fails(&[&"sign", &"--bundle", &fasb, &"--key", &d.join("k.key")]);
        assert!(err.contains("chmod 600"), "{err}");
    }
    std::fs::remove_dir_all(d).unwrap();
}

/// The trust fields a door enforces: `bundle --bundle-version --not-after
/// --threshold-floor --pin-detector` write them into the signed manifest (format 2), and
/// `permit-downgrade` signs a permit that names exactly that bundle.
#[test]
fn trust_fields_and_a_downgrade_permit() {
    use fas_infer::bundle::permit::SignedPermit;
    use fas_infer::bundle::{Bundle, TrustedKeys};
    let d = tempdir("trust");
    let draft = d.join("draft.json");
    write_draft(&draft);
    let fasb = d.join("door.fasb");
    let detector = asset("retinaface_mnet025.onnx");
    ok(&[&"keygen", &"--out", &d.join("keys/release")]);
    let key = d.join("keys/release.key");
    let model = asset("mtcnn_pnet.onnx");
    // `fas-quantize bundle` of the draft, signed, to `out`, with `extra` flags.
    let bundle = |out: &Path, extra: &[&str]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"bundle",
            &"--manifest",
            &draft,
            &"--model",
            &model,
            &"--key",
            &key,
            &"--out",
        ];
        args.push(&out);
        args.extend(extra.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
        fas_quantize(&args)
    };
    let det = detector.to_str().unwrap();
    let out = bundle(
        &fasb,
        &[
            "--bundle-version",
            "7",
            "--not-after",
            "2030-01-01",
            "--threshold-floor",
            "0.5",
            "--pin-detector",
            det,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    // Versioned and pinned: no warning.
    assert!(!stderr.contains("WARNING"), "{stderr}");
    let keys = TrustedKeys::load(&d.join("keys")).unwrap();
    let b = Bundle::open(&fasb, &keys).unwrap();
    let m = &b.manifest;
    assert_eq!((m.format_version, m.bundle_version), (2, 7));
    // 2030-01-01T00:00:00Z.
    assert_eq!(m.not_after, Some(1_893_456_000));
    assert_eq!(m.threshold_floor, Some(0.5));
    assert_eq!(
        m.detector_sha256,
        vec![sha256_hex(&std::fs::read(&detector).unwrap())]
    );
    let text = ok(&[&"inspect", &"--bundle", &fasb]);
    assert!(
        text.contains("version     7") && text.contains("floor       0.5"),
        "{text}"
    );

    // A floor above a recommended threshold, or a date that is not one: refused.
    let x = d.join("x.fasb");
    for (flags, says) in [
        (["--threshold-floor", "0.7"], "thresholds[0].value"),
        (["--not-after", "next week"], "--not-after"),
        (["--not-after", "2031-02-29"], "--not-after"),
        (["--not-after", "20271231"], "already past"),
    ] {
        let out = bundle(&x, &flags);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains(says), "{flags:?}: {e}");
    }
    // Neither packed nor pinned: written, with the warning.
    let out = bundle(&d.join("unpinned.fasb"), &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pins one"));

    let permit = d.join("permit.json");
    ok(&[
        &"permit-downgrade",
        &"--bundle",
        &fasb,
        &"--key",
        &key,
        &"--out",
        &permit,
    ]);
    let (p, signer) = SignedPermit::verify(&std::fs::read(&permit).unwrap(), &keys).unwrap();
    assert_eq!(
        (p.bundle_sha256.as_str(), p.bundle_version),
        (b.manifest_sha256.as_str(), 7)
    );
    assert_eq!(signer, keys.ids().next().unwrap());
    // A key that did not sign the bundle cannot permit it.
    ok(&[&"keygen", &"--out", &d.join("other/k")]);
    let e = fails(&[
        &"permit-downgrade",
        &"--bundle",
        &fasb,
        &"--key",
        &d.join("other/k.key"),
        &"--out",
        &d.join("p2.json"),
    ]);
    assert!(e.contains("only for a bundle this key signed"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}
