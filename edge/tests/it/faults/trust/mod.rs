//! The trust chain around the signed bundle, attacked as someone with a shell as the
//! service user (or the SD card) would: write a calibration, edit the config, swap the
//! detector, put back an old bundle, run an expired or revoked one. Every attack here
//! opened or weakened the door before these checks existed; each must now stop start-up
//! (and `check-config`) with an error that names the file and the fix.

use std::path::{Path, PathBuf};

use fas_core::bundle::sha256_hex;
use fas_edge::app::{calibrate, check_config, run, CalibrateOpts, Common, RunLimits};
use fas_quantize::bundle::fixture::{write_tiny_bundle, TinyBundle, TinyModel};

use super::asset;

fn retinaface_sha() -> String {
    sha256_hex(&std::fs::read(asset("retinaface_mnet025.onnx")).unwrap())
}

/// A tiny signed bundle whose model scores every face `σ(bias)`, pinning RetinaFace.
fn bundle(dir: &Path, name: &str, bias: f32, edit: impl FnOnce(&mut TinyModel)) -> TinyBundle {
    let mut m = TinyModel::constant(name, bias);
    m.detector_sha256 = vec![retinaface_sha()];
    edit(&mut m);
    write_tiny_bundle(dir, &m).unwrap()
}

fn common(dir: &Path, b: &TinyBundle) -> Common {
    Common {
        camera: Some("synthetic:3".into()),
        bundle: Some(b.bundle.clone()),
        keys: Some(b.keys.clone()),
        detector: Some(asset("retinaface_mnet025.onnx")),
        audit: Some(dir.join("audit.jsonl")),
        calibration: Some(dir.join("calibration.json")),
        device_dir: Some(dir.join("device")),
        ..Common::default()
    }
}

fn limits(frames: u64) -> RunLimits {
    RunLimits {
        max_frames: Some(frames),
        max_decisions: None,
    }
}

fn refused(c: &Common) -> String {
    let e = format!(
        "{:#}",
        check_config(c).err().expect("check-config must refuse")
    );
    let r = format!(
        "{:#}",
        run(c, &limits(5)).expect_err("start-up must refuse")
    );
    assert_eq!(e, r, "check-config and start-up disagree");
    e
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("edge.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The security review's reproduction: an unsigned `calibration.json` with a low
/// threshold turned a model scoring 0.5 against the bundle's 0.9 from deny into grant.
#[test]
fn a_hand_written_calibration_cannot_lower_the_bar() {
    let d = tempfile::tempdir().unwrap();
    let b = bundle(d.path(), "cal", 0.0, |m| m.threshold = 0.9);
    let c = common(d.path(), &b);
    let s = run(&c, &limits(60)).unwrap();
    assert!(s.deny >= 1 && s.grant == 0, "p_live 0.5 < 0.9: {s:?}");
    std::fs::write(
        d.path().join("calibration.json"),
        serde_json::json!({
            "threshold": 0.1, "target_bpcer": 0.05, "bpcer": 0.0, "apcer": null,
            "bona_fide": [0.9], "attacks": [], "time_ms": 0,
            "model_sha256": sha256_hex(&b.onnx),
        })
        .to_string(),
    )
    .unwrap();
    let e = refused(&c);
    assert!(
        e.contains("calibration.json") && e.contains("unsigned calibration"),
        "{e}"
    );
}

/// `fas-edge calibrate` signs with the device key and never fits below the floor; an edit
/// of the signed file, or the file on another device, is refused.
#[test]
fn calibration_is_signed_bound_and_floored() {
    let d = tempfile::tempdir().unwrap();
    // Every face scores 0.5; the publisher's floor is 0.6.
    let b = bundle(d.path(), "floor", 0.0, |m| {
        m.threshold = 0.7;
        m.threshold_floor = Some(0.6);
    });
    let c = common(d.path(), &b);
    let opts = CalibrateOpts {
        bona_fide: 3,
        attacks: 0,
        target_bpcer: 0.0,
        out: None,
        report_png: None,
        wait_for_enter: false,
        max_frames_per_session: 120,
    };
    let cal = calibrate(&c, &opts).unwrap();
    assert!((cal.fitted_threshold - 0.5).abs() < 1e-3, "{cal:?}");
    assert_eq!(cal.threshold, 0.6, "raised to the floor: {cal:?}");
    assert_eq!(cal.bpcer, 1.0, "reported honestly at the threshold used");
    let p = check_config(&c).unwrap();
    assert!((p.threshold - 0.6).abs() < 1e-6, "{}", p.threshold);
    assert!(
        p.threshold_from.contains("calibration"),
        "{}",
        p.threshold_from
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["calibration.json", "device/device.key"] {
            let mode = std::fs::metadata(d.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f}: {mode:o}");
        }
    }

    // Lowered by hand after signing.
    let cal_path = d.path().join("calibration.json");
    let signed = std::fs::read_to_string(&cal_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&signed).unwrap();
    v["calibration"]["threshold"] = 0.3.into();
    std::fs::write(&cal_path, v.to_string()).unwrap();
    let e = refused(&c);
    assert!(e.contains("does not match its content"), "{e}");

    // The signed file copied to another device (another device key).
    std::fs::write(&cal_path, &signed).unwrap();
    let other = Common {
        device_dir: Some(d.path().join("other-device")),
        ..c.clone()
    };
    fas_edge::trust::device_key::load_or_create(&d.path().join("other-device/device.key")).unwrap();
    let e = refused(&other);
    assert!(e.contains("signed by key"), "{e}");

    // No device key at all.
    let e = refused(&Common {
        device_dir: Some(d.path().join("no-device")),
        ..c.clone()
    });
    assert!(e.contains("device key"), "{e}");

    // The same calibration under another bundle (same model, new release).
    let b2 = bundle(d.path(), "floor", 0.0, |m| {
        m.threshold = 0.7;
        m.threshold_floor = Some(0.6);
        m.bundle_version = 2;
    });
    let e = refused(&common(d.path(), &b2));
    assert!(e.contains("calibrated for bundle"), "{e}");
}

/// `policy.threshold` in the config file is bounded by the floor too, and an integer
/// threshold is a threshold.
#[test]
fn the_config_file_cannot_lower_the_bar_either() {
    let d = tempfile::tempdir().unwrap();
    let b = bundle(d.path(), "cfg", 9.0, |m| m.threshold = 0.9);
    let low = write_config(d.path(), "[policy]\nthreshold = 0.1\n");
    let e = refused(&Common {
        config: Some(low),
        ..common(d.path(), &b)
    });
    assert!(
        e.contains("policy.threshold") && e.contains("floor 0.9"),
        "{e}"
    );
    // `threshold = 1` (an integer): the strictest bar, used as written. The model scores
    // σ(9) ≈ 0.9999 < 1: no grant.
    let one = write_config(d.path(), "[policy]\nthreshold = 1\nhysteresis = 0\n");
    let c = Common {
        config: Some(one),
        ..common(d.path(), &b)
    };
    assert_eq!(check_config(&c).unwrap().threshold, 1.0);
    let s = run(&c, &limits(60)).unwrap();
    assert_eq!(s.grant, 0, "{s:?}");
}

/// A detector the bundle does not pin is refused: a swapped detector could, e.g., report
/// a face where a photo's bezel is cropped away.
#[test]
fn the_detector_cannot_be_swapped() {
    let d = tempfile::tempdir().unwrap();
    let b = bundle(d.path(), "pin", 9.0, |_| {});
    let mut c = common(d.path(), &b);
    check_config(&c).unwrap();
    let swapped = d.path().join("retinaface_mnet025.onnx");
    let mut bytes = std::fs::read(asset("retinaface_mnet025.onnx")).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&swapped, bytes).unwrap();
    c.detector = Some(swapped);
    let e = refused(&c);
    assert!(e.contains("is not a detector the signed bundle"), "{e}");
    // A bundle that pins nothing trusts no external detector.
    let unpinned = bundle(d.path(), "nopin", 9.0, |m| m.detector_sha256.clear());
    let e = refused(&common(d.path(), &unpinned));
    assert!(e.contains("pins no face detector"), "{e}");
}

/// Anti-rollback: after version 3 ran, version 2 is refused until an operator signs a
/// permit for exactly that bundle.
#[test]
fn an_old_bundle_cannot_be_put_back() {
    use fas_infer::bundle::permit::Permit;
    use fas_infer::bundle::{Bundle, TrustedKeys};
    let d = tempfile::tempdir().unwrap();
    let v3 = bundle(&d.path().join("v3"), "door", 9.0, |m| m.bundle_version = 3);
    let v2 = bundle(&d.path().join("v2"), "door", 9.0, |m| m.bundle_version = 2);
    run(&common(d.path(), &v3), &limits(3)).unwrap();
    let state = d.path().join("device/state.json");
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(st["highest_bundle_version"], 3, "{st}");
    let e = refused(&common(d.path(), &v2));
    assert!(e.contains("older than version 3"), "{e}");

    // The operator's permit (the fixture's signing key is derived from the model name).
    let keys = TrustedKeys::load(&v2.keys).unwrap();
    let opened = Bundle::open(&v2.bundle, &keys).unwrap();
    let key = fas_quantize::bundle::fixture::fixture_key("door");
    let permit = d.path().join("permit.json");
    std::fs::write(
        &permit,
        serde_json::to_vec(&Permit::downgrade(&opened.manifest_sha256, 2).sign(&key)).unwrap(),
    )
    .unwrap();
    let cfg = write_config(
        d.path(),
        &format!("[model]\ndowngrade = \"{}\"\n", permit.display()),
    );
    let c = Common {
        config: Some(cfg),
        ..common(d.path(), &v2)
    };
    check_config(&c).unwrap();
    run(&c, &limits(3)).unwrap();
    // The highest stays 3: the permit allows its bundle, not everything below 3.
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(st["highest_bundle_version"], 3, "{st}");
}

/// Expired and revoked bundles are refused.
#[test]
fn expired_or_revoked_bundles_do_not_run() {
    let d = tempfile::tempdir().unwrap();
    let expired = bundle(&d.path().join("old"), "old", 9.0, |m| m.not_after = Some(1));
    let e = refused(&common(d.path(), &expired));
    assert!(e.contains("expired"), "{e}");
    let current = bundle(&d.path().join("cur"), "cur", 9.0, |m| {
        m.not_after = Some(u64::MAX)
    });
    let c = common(d.path(), &current);
    check_config(&c).unwrap();
    let keys = fas_infer::bundle::TrustedKeys::load(&current.keys).unwrap();
    let key_id = keys.ids().next().unwrap().to_string();
    let list = d.path().join("revoked");
    let cfg = write_config(
        d.path(),
        &format!("[model]\nrevoked = \"{}\"\n", list.display()),
    );
    let c = Common {
        config: Some(cfg),
        ..c
    };
    std::fs::write(&list, format!("key {key_id}\n")).unwrap();
    let e = refused(&c);
    assert!(e.contains("revocation list revokes"), "{e}");
    let opened = fas_infer::bundle::Bundle::open(&current.bundle, &keys).unwrap();
    std::fs::write(
        &list,
        format!("# withdrawn\nbundle {}\n", opened.manifest_sha256),
    )
    .unwrap();
    let e = refused(&c);
    assert!(e.contains("is revoked"), "{e}");
    std::fs::write(&list, "revoke it all\n").unwrap();
    let e = refused(&c);
    assert!(e.contains("revocation list") && e.contains("line 1"), "{e}");
}

/// `check-config` loads what start-up loads: a config whose bundle does not exist used
/// to pass it.
#[test]
fn check_config_checks_what_start_checks() {
    let d = tempfile::tempdir().unwrap();
    let b = bundle(d.path(), "check", 9.0, |_| {});
    let c = Common {
        bundle: Some(d.path().join("missing.fasb")),
        ..common(d.path(), &b)
    };
    let e = refused(&c);
    assert!(e.contains("missing.fasb"), "{e}");
    // Nothing written by a check: no state, no audit log.
    check_config(&common(d.path(), &b)).unwrap();
    assert!(!d.path().join("device/state.json").exists());
    assert!(!d.path().join("audit.jsonl").exists());
}

/// `fas-edge lock` drives the configured actuator to locked; a relay that cannot be
/// driven is an error (the unit's `ExecStopPost=` then fails loudly).
#[test]
fn lock_command() {
    let d = tempfile::tempdir().unwrap();
    let ok = write_config(d.path(), "[actuator]\nkind = \"none\"\n");
    let c = Common {
        config: Some(ok),
        ..Common::default()
    };
    assert_eq!(fas_edge::app::lock(&c).unwrap(), "none");
    // Whatever else in the file is broken, the actuator section still locks.
    let broken = write_config(
        d.path(),
        "[policy]\nframes = 0\n[camera]\nwidht = 1\n[actuator]\nkind = \"none\"\n",
    );
    let c = Common {
        config: Some(broken),
        ..Common::default()
    };
    assert!(check_config(&c).is_err());
    assert_eq!(fas_edge::app::lock(&c).unwrap(), "none");
    let bad = write_config(
        d.path(),
        "[actuator]\nkind = \"gpio\"\nchip = \"/dev/no-such-gpiochip\"\nline = 17\npolarity = \"active_high\"\n",
    );
    let e = format!(
        "{:#}",
        fas_edge::app::lock(&Common {
            config: Some(bad),
            ..Common::default()
        })
        .unwrap_err()
    );
    assert!(
        e.contains("locking the door") && e.contains("no-such-gpiochip"),
        "{e}"
    );
}

/// The release profile keeps `panic = "unwind"`: a panic then drops the relay, which
/// drives it locked (with `abort` the line would stay as it was).
#[test]
fn release_profile_unwinds() {
    let toml: toml::Table =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
    assert_eq!(
        toml["profile"]["release"]
            .get("panic")
            .and_then(|v| v.as_str()),
        Some("unwind")
    );
}

/// Someone trying photo after photo: after `lockout_after` denials in a row the door
/// refuses every session for `lockout_ms` — each refusal audited as `locked_out`, the
/// denial that started it carrying the lockout's end — and nothing is granted meanwhile.
#[test]
fn repeated_attack_denials_lock_the_door_out() {
    use fas_core::audit::AuditRecord;
    use fas_core::decision::Reason;
    let d = tempfile::tempdir().unwrap();
    // p_live ≈ 0 for every face: every scored session is an attack denial.
    let b = bundle(d.path(), "attacker", -9.0, |_| {});
    let cfg = write_config(
        d.path(),
        "[policy]\nframes = 2\ncooldown_ms = 300\nlockout_after = 2\nlockout_ms = 600000\n",
    );
    let c = Common {
        config: Some(cfg),
        ..common(d.path(), &b)
    };
    let s = run(&c, &limits(150)).unwrap();
    assert_eq!(s.grant, 0, "{s:?}");
    let records: Vec<AuditRecord> = std::fs::read_to_string(d.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reasons: Vec<Reason> = records.iter().map(|r| r.reason).collect();
    assert!(reasons.len() >= 4, "{reasons:?}");
    assert_eq!(&reasons[..2], &[Reason::BelowThreshold; 2], "{reasons:?}");
    assert!(
        reasons[2..].iter().all(|&r| r == Reason::LockedOut),
        "{reasons:?}"
    );
    assert_eq!(records[0].lockout_until_ms, None);
    let until = records[1]
        .lockout_until_ms
        .expect("the second denial starts it");
    assert!(until >= records[1].time_ms + 599_000, "{until}");
    for r in &records[2..] {
        assert_eq!(r.lockout_until_ms, Some(until));
        assert_eq!(r.frames_used, 0);
    }
    fas_core::audit::verify_file(d.path().join("audit.jsonl")).unwrap();
}

/// A full disk (here: a 2-block file-size limit on the process, `ulimit -f 2`) must not
/// stop the door nor let it open unrecorded: once the audit log cannot grow, every
/// decision is a deny with an `alarm` event, the process keeps running to its frame limit,
/// and the log it leaves still verifies (a torn write is cut back).
#[test]
fn a_full_disk_denies_with_an_alarm_and_keeps_running() {
    let d = tempfile::tempdir().unwrap();
    let b = bundle(d.path(), "fulldisk", 9.0, |_| {});
    let audit = d.path().join("audit.jsonl");
    let bin = env!("CARGO_BIN_EXE_fas-edge");
    let cfg = write_config(d.path(), "[policy]\nframes = 2\ncooldown_ms = 100\n");
    let script = format!(
        "ulimit -f 2; exec \"{bin}\" --config \"{}\" --camera synthetic:3 --bundle \"{}\" --keys \"{}\" --detector \"{}\" --audit \"{}\" --calibration \"{}\" --device-dir \"{}\" --json --max-frames 120",
        cfg.display(),
        b.bundle.display(),
        b.keys.display(),
        asset("retinaface_mnet025.onnx").display(),
        audit.display(),
        d.path().join("none.json").display(),
        d.path().join("device").display(),
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decisions: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "decision").collect();
    let alarms = events.iter().filter(|e| e["event"] == "alarm").count();
    let records = fas_core::audit::verify_file(&audit).unwrap().records as usize;
    assert!(
        records >= 1 && alarms >= 1,
        "records {records}, alarms {alarms}\n{stdout}"
    );
    assert_eq!(decisions.len(), records + alarms, "{stdout}");
    // Every decision past the full log was a deny; the last event says the door stopped
    // at its frame limit, not on the error.
    for d in &decisions[records..] {
        assert_eq!(d["decision"], "deny", "{d}");
        assert_eq!(d["reason"], "internal_error", "{d}");
    }
    assert!(
        stderr.contains("ALARM: cannot write the audit log"),
        "{stderr}"
    );
    assert_eq!(events.last().unwrap()["event"], "stopped", "{stdout}");
    assert_eq!(events.last().unwrap()["frames"], 120, "{stdout}");
}

/// `audit.syslog`: every record, byte for byte as in the log, also goes to the syslog
/// socket — a copy that rewriting the log on the device cannot reach.
#[cfg(unix)]
#[test]
fn every_audit_record_is_copied_to_syslog() {
    use std::os::unix::net::UnixDatagram;
    let d = tempfile::tempdir().unwrap();
    let sock_path = d.path().join("dev-log");
    let syslog = UnixDatagram::bind(&sock_path).unwrap();
    syslog.set_nonblocking(true).unwrap();
    let b = bundle(d.path(), "syslog", 9.0, |_| {});
    let cfg = write_config(
        d.path(),
        &format!(
            "[policy]\nframes = 2\ncooldown_ms = 200\n[audit]\nsyslog = \"{}\"\n",
            sock_path.display()
        ),
    );
    let c = Common {
        config: Some(cfg),
        ..common(d.path(), &b)
    };
    let s = run(&c, &limits(60)).unwrap();
    assert!(s.grant >= 2, "{s:?}");
    let log = std::fs::read_to_string(d.path().join("audit.jsonl")).unwrap();
    let mut copies = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = syslog.recv(&mut buf) {
        copies.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(copies.len(), lines.len(), "{copies:?}");
    for (copy, line) in copies.iter().zip(&lines) {
        let prefix = format!("<85>fas-edge[{}]: ", std::process::id());
        assert_eq!(copy.strip_prefix(&prefix), Some(*line), "{copy}");
    }
    // Nobody listening: the door still runs and still writes its own log.
    drop(syslog);
    std::fs::remove_file(&sock_path).unwrap();
    let s = run(&c, &limits(30)).unwrap();
    assert!(s.grant >= 1, "{s:?}");
}
