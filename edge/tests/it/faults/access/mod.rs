//! Door access through the whole door (`Door::credential` + `Door::step`): synthetic
//! camera frames, the real RetinaFace detector, a signed bundle whose liveness model grants
//! every face, the `command` actuator and the audit log. Only the access factors can keep
//! the door locked here, so each test attacks one of them.

mod osdp;

use fas_core::access::{AccessMode, FactorState};
use fas_core::audit::AuditRecord;
use fas_core::decision::{Decision, Reason};
use fas_edge::access::credential::Credential;
use fas_edge::access::gate::Gate;
use fas_edge::access::store::{Person, Store, NO_MODEL};
use fas_edge::config::EdgeConfig;
use fas_edge::policy::Mode;
use fas_quantize::bundle::fixture::TinyModel;

use super::{rig_with, Fault};

fn card(s: &str) -> Credential {
    s.parse().unwrap()
}

fn records(path: &std::path::Path) -> Vec<AuditRecord> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn cards_only() -> Store {
    let mut s = Store::empty(NO_MODEL);
    s.add(
        Person {
            id: "alice".into(),
            name: Some("Alice".into()),
            credentials: vec![card("26:1:1")],
            templates: vec![],
            enrolled_ms: 0,
        },
        0,
    )
    .unwrap();
    s
}

/// `mode = "credential"`: an enrolled card and a live person open; an unknown card and an
/// unreadable frame are denied at once, without a session, and never reach the relay.
#[test]
fn only_an_enrolled_card_opens_and_every_attempt_is_audited() {
    let mut r = rig_with(TinyModel::constant("grants-all", 9.0), Mode::Triggered);
    r.door.access = Some(Gate::new(AccessMode::Credential, cards_only(), 0.5, None));

    let out = r.door.credential(Ok(card("26:1:9"))).unwrap().unwrap();
    assert_eq!(out.verdict.reason, Reason::CredentialUnknown);
    let out = r
        .door
        .credential(Err("Wiegand parity bit 0 is wrong".into()))
        .unwrap()
        .unwrap();
    assert_eq!(out.verdict.reason, Reason::CredentialInvalid);
    // Faces alone start nothing: the door reads credentials.
    let idle = r.run(15, Fault::None, 1);
    assert!(idle.is_empty(), "{idle:?}");
    assert_eq!(r.actuator_runs(), 0);

    assert!(r.door.credential(Ok(card("26:1:1"))).unwrap().is_none());
    let out = r.run(40, Fault::None, 1);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].verdict.reason, Reason::Verified);
    assert_eq!(r.actuator_runs(), 1);

    let recs = records(&r.audit);
    let reasons: Vec<Reason> = recs.iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        [
            Reason::CredentialUnknown,
            Reason::CredentialInvalid,
            Reason::Verified
        ]
    );
    for rec in &recs {
        let a = rec.access.as_ref().expect("every record names the factors");
        assert_eq!(a.mode, AccessMode::Credential);
        assert_eq!(a.factors.face, FactorState::NotRequired);
    }
    let granted = recs[2].access.as_ref().unwrap();
    assert_eq!(granted.person.as_deref(), Some("alice"));
    assert_eq!(granted.factors.credential, FactorState::Passed);
    assert_eq!(granted.factors.live, FactorState::Passed);
    assert_eq!(recs[0].access.as_ref().unwrap().person, None);
    assert_eq!(
        recs[0].access.as_ref().unwrap().factors.live,
        FactorState::Missing
    );
    // No record carries a name.
    let text = std::fs::read_to_string(&r.audit).unwrap();
    assert!(!text.contains("Alice"), "{text}");
}

/// A spoof with an enrolled card: the liveness factor still decides.
#[test]
fn an_enrolled_card_with_a_face_that_is_not_live_is_denied() {
    let mut r = rig_with(TinyModel::constant("denies-all", -9.0), Mode::Triggered);
    r.door.access = Some(Gate::new(AccessMode::Credential, cards_only(), 0.5, None));
    assert!(r.door.credential(Ok(card("26:1:1"))).unwrap().is_none());
    let out = r.run(40, Fault::None, 1);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].verdict.reason, Reason::BelowThreshold);
    assert_eq!(out[0].verdict.decision, Decision::Deny);
    assert_eq!(r.actuator_runs(), 0);
    let rec = records(&r.audit).pop().unwrap();
    let a = rec.access.unwrap();
    assert_eq!(a.person.as_deref(), Some("alice"));
    assert_eq!(a.factors.credential, FactorState::Passed);
    assert_eq!(a.factors.live, FactorState::Failed);
}

/// A relay or command with no `[access]` would open for any live face: refused, naming the
/// section and the modes; `presence` needs its explicit acknowledgement.
#[test]
fn a_door_without_access_is_refused() {
    let relay = "[actuator]\nkind = \"gpio\"\nchip = \"/dev/gpiochip0\"\nline = 17\npolarity = \"active_high\"\n";
    let e = EdgeConfig::parse(relay, std::path::Path::new("edge.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("edge.toml: access: missing"), "{e}");
    for mode in ["credential+face", "face", "credential", "presence"] {
        assert!(e.contains(mode), "{e}");
    }
    let cmd = "[actuator]\nkind = \"command\"\nprogram = \"/bin/true\"\n";
    assert!(EdgeConfig::parse(cmd, std::path::Path::new("edge.toml")).is_err());
    // Headless (no actuator) needs no [access].
    EdgeConfig::parse(
        "[actuator]\nkind = \"none\"\n",
        std::path::Path::new("e.toml"),
    )
    .unwrap();
    let presence = format!("{relay}[access]\nmode = \"presence\"\n");
    let e = EdgeConfig::parse(&presence, std::path::Path::new("edge.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("allow_any_live_face"), "{e}");
    EdgeConfig::parse(
        &format!("{presence}allow_any_live_face = true\n"),
        std::path::Path::new("edge.toml"),
    )
    .unwrap();
    EdgeConfig::parse(
        &format!("{relay}[access]\nmode = \"credential+face\"\n"),
        std::path::Path::new("edge.toml"),
    )
    .unwrap();
}

/// Someone trying card numbers is locked out like someone trying photos; during the
/// lockout even an enrolled card is refused.
#[test]
fn trying_card_numbers_locks_the_door_out() {
    let mut r = rig_with(TinyModel::constant("grants-all", 9.0), Mode::Triggered);
    r.door.policy = fas_edge::policy::Policy::new(fas_edge::policy::PolicyConfig {
        lockout_after: 3,
        lockout_ms: 60_000,
        ..r.door.policy.config().clone()
    })
    .unwrap();
    r.door.access = Some(Gate::new(AccessMode::Credential, cards_only(), 0.5, None));
    for n in 2..5 {
        let out = r
            .door
            .credential(Ok(card(&format!("26:1:{n}"))))
            .unwrap()
            .unwrap();
        assert_eq!(out.verdict.reason, Reason::CredentialUnknown);
    }
    let out = r.door.credential(Ok(card("26:1:9"))).unwrap().unwrap();
    assert_eq!(out.verdict.reason, Reason::LockedOut);
    let out = r.door.credential(Ok(card("26:1:1"))).unwrap().unwrap();
    assert_eq!(out.verdict.reason, Reason::LockedOut);
    assert!(r.run(30, Fault::None, 1).is_empty());
    assert_eq!(r.actuator_runs(), 0);
    let recs = records(&r.audit);
    assert!(recs[2].lockout_until_ms.is_some(), "{:?}", recs[2]);
}

// ---- Faces: the real embedding network on real photos of real people ----

use fas_edge::access::gate::FaceEmbed;
use fas_edge::access::runtime::{Embedder, THRESHOLD_ONE_TO_MANY, THRESHOLD_ONE_TO_ONE};
use fas_edge::camera::Frame;
use fas_infer::detect::{FaceDetector, RetinaFace, RetinaFaceConfig};

fn photo(name: &str) -> fas_core::preprocess::RgbImage {
    image::open(super::asset(name)).unwrap().to_rgb8().into()
}

/// The embedding of the largest face in `name`.
fn template(e: &mut Embedder, name: &str) -> Vec<f32> {
    let img = photo(name);
    let mut det = RetinaFace::load(
        super::asset("retinaface_mnet025.onnx"),
        RetinaFaceConfig::default(),
    )
    .unwrap();
    let faces = det.detect(&img.clone().into()).unwrap();
    let face = faces
        .iter()
        .max_by(|a, b| (a.width() * a.height()).total_cmp(&(b.width() * b.height())))
        .expect("a face in the photo");
    e.embed(&img, face).unwrap()
}

fn embedder() -> Embedder {
    Embedder::load(&super::asset("dlib_face_resnet.onnx")).unwrap()
}

/// Obama's card (template from obama2.jpg), Biden's card (biden.jpg); nobody else.
fn two_people(e: &mut Embedder) -> Store {
    let mut s = Store::empty(&e.sha256);
    for (id, c, photo) in [
        ("p-obama", "26:1:1", "obama2.jpg"),
        ("p-biden", "26:1:2", "biden.jpg"),
    ] {
        s.add(
            Person {
                id: id.into(),
                name: None,
                credentials: vec![card(c)],
                templates: vec![template(e, photo)],
                enrolled_ms: 0,
            },
            fas_infer::embed::EMBEDDING_DIM,
        )
        .unwrap();
    }
    s
}

/// Shows `img` for `n` frames, 40 ms apart, continuing the rig's clock.
fn show(
    r: &mut super::Rig,
    img: &fas_core::preprocess::RgbImage,
    n: usize,
) -> Vec<fas_edge::policy::SessionOutcome> {
    let mut out = Vec::new();
    for _ in 0..n {
        let t = r.started.elapsed();
        let frame = Frame {
            image: img.clone(),
            seq: 0,
            t,
            dropped_before: 0,
            wall_ms: fas_edge::camera::wall_ms_now(),
        };
        out.extend(r.door.step(Ok(frame)).unwrap().outcome);
        std::thread::sleep(std::time::Duration::from_millis(40));
    }
    out
}

fn face_rig(bias: f32, mode: AccessMode) -> super::Rig {
    let mut e = embedder();
    let store = two_people(&mut e);
    let threshold = match mode {
        AccessMode::Face => THRESHOLD_ONE_TO_MANY,
        _ => THRESHOLD_ONE_TO_ONE,
    };
    let policy_mode = if mode.needs_credential() {
        Mode::Triggered
    } else {
        Mode::Continuous
    };
    let mut r = rig_with(TinyModel::constant("liveness", bias), policy_mode);
    r.door.access = Some(Gate::new(mode, store, threshold, Some(Box::new(e))));
    r
}

/// Issue 25's four door cases, with another photo of each person at the camera than the
/// one enrolled: enrolled card + that person's live face → grant; enrolled card + another
/// person's live face → face_mismatch; unknown card → credential_unknown; enrolled card + a
/// replay of the person's face (the liveness model says not live) → not live.
#[test]
fn the_four_door_cases_with_real_faces() {
    let obama = photo("obama.jpg");
    let mut r = face_rig(9.0, AccessMode::CredentialFace);
    assert!(r.door.credential(Ok(card("26:1:1"))).unwrap().is_none());
    let out = show(&mut r, &obama, 12);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].verdict.reason, Reason::Verified);
    assert_eq!(r.actuator_runs(), 1);

    assert!(r.door.credential(Ok(card("26:1:2"))).unwrap().is_none());
    let out = show(&mut r, &obama, 12);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].verdict.reason, Reason::FaceMismatch);

    let out = r.door.credential(Ok(card("26:1:7"))).unwrap().unwrap();
    assert_eq!(out.verdict.reason, Reason::CredentialUnknown);
    assert_eq!(r.actuator_runs(), 1, "only the first case opened");

    let recs = records(&r.audit);
    let granted = recs[0].access.clone().unwrap();
    assert_eq!(granted.person.as_deref(), Some("p-obama"));
    let sim = granted.factors.face_similarity.unwrap();
    assert!(sim >= THRESHOLD_ONE_TO_ONE, "{sim}");
    let mismatch = recs[1].access.clone().unwrap();
    assert_eq!(mismatch.person.as_deref(), Some("p-biden"));
    assert_eq!(mismatch.factors.face, FactorState::Failed);
    println!(
        "obama.jpg vs enrolled obama2.jpg: {sim:.4}; vs biden.jpg: {:.4}",
        mismatch.factors.face_similarity.unwrap()
    );

    let mut replay = face_rig(-9.0, AccessMode::CredentialFace);
    assert!(replay
        .door
        .credential(Ok(card("26:1:1")))
        .unwrap()
        .is_none());
    let out = show(&mut replay, &obama, 12);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].verdict.reason, Reason::BelowThreshold);
    assert_eq!(replay.actuator_runs(), 0);
}

/// `mode = "face"` (1:N): an enrolled person's live face opens and is named; a live
/// stranger does not.
#[test]
fn face_mode_names_the_person_and_refuses_a_live_stranger() {
    let mut r = face_rig(9.0, AccessMode::Face);
    let out = show(&mut r, &photo("obama.jpg"), 8);
    assert!(!out.is_empty());
    assert_eq!(out[0].verdict.reason, Reason::Verified, "{out:?}");
    let rec = records(&r.audit).remove(0);
    assert_eq!(rec.access.unwrap().person.as_deref(), Some("p-obama"));
    let opened = r.actuator_runs();
    let out = show(&mut r, &photo("grace_hopper.jpg"), 8);
    // The session running when she stepped in ends face_changed (its first frames were
    // Obama's); hers end face_mismatch.
    assert!(
        out.iter()
            .all(|o| matches!(o.verdict.reason, Reason::FaceMismatch | Reason::FaceChanged)),
        "{out:?}"
    );
    assert!(out.iter().any(|o| o.verdict.reason == Reason::FaceMismatch));
    assert_eq!(r.actuator_runs(), opened);
}

// ---- Enrolment: `fas-edge enroll` through its library entry points ----

use fas_edge::access::enroll::{self, AddOpts};
use fas_edge::app::Common;

/// A door config with `[access]` in `dir`, and a folder of `photo` frames as the camera.
fn enrol_rig(dir: &std::path::Path, photo_name: &str, mode: &str) -> Common {
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for i in 0..12 {
        std::fs::copy(super::asset(photo_name), frames.join(format!("{i:02}.jpg"))).unwrap();
    }
    let tiny = fas_quantize::bundle::fixture::write_tiny_bundle(
        &dir.join("bundle"),
        &super::pinning(
            TinyModel::constant("enrol", 9.0),
            &["retinaface_mnet025.onnx"],
        ),
    )
    .unwrap();
    let config = dir.join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "[access]\nmode = \"{mode}\"\nenrollment = \"{}\"\nenrollment_key = \"{}\"\nface_model = \"{}\"\n",
            dir.join("state/people.fas").display(),
            dir.join("keys/people.key").display(),
            super::asset("dlib_face_resnet.onnx").display()
        ),
    )
    .unwrap();
    Common {
        config: Some(config),
        input: Some(frames),
        bundle: Some(tiny.bundle),
        keys: Some(tiny.keys),
        detector: Some(super::asset("retinaface_mnet025.onnx")),
        calibration: Some(dir.join("none.json")),
        device_dir: Some(dir.join("device")),
        ..Common::default()
    }
}

fn add_opts(id: &str, cards: &[&str]) -> AddOpts {
    AddOpts {
        id: id.into(),
        name: Some(format!("{id} the person")),
        credentials: cards.iter().map(|c| card(c)).collect(),
        no_face: false,
        poses: 3,
        wait_for_enter: false,
        max_frames_per_pose: 20,
    }
}

/// add → the store holds three live poses' embeddings, encrypted, 0600, and the door
/// verifies another photo of the person against them; list, remove (gone from disk),
/// export → import on a "new board", and an import under another embedding model refused.
#[test]
fn enrol_list_remove_export_import() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let c = enrol_rig(d.path(), "obama2.jpg", "credential+face");
    let p = enroll::add(&c, &add_opts("p-obama", &["26:5:100"])).unwrap();
    assert_eq!(p.templates.len(), 3);
    let store_path = d.path().join("state/people.fas");
    let mode = std::fs::metadata(&store_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let on_disk = std::fs::read(&store_path).unwrap();
    assert!(
        !on_disk.windows(7).any(|w| w == b"p-obama"),
        "the store is encrypted"
    );
    // The same id twice is refused before anyone poses.
    let e = enroll::add(&c, &add_opts("p-obama", &["26:5:101"])).unwrap_err();
    assert!(format!("{e:#}").contains("already enrolled"), "{e:#}");
    // In credential+face mode a card is required.
    let e = enroll::add(&c, &add_opts("p-nocard", &[])).unwrap_err();
    assert!(format!("{e:#}").contains("--credential"), "{e:#}");

    // The enrolled templates verify another photo of the same person.
    let mut e = embedder();
    let other = template(&mut e, "obama.jpg");
    let people = enroll::list(&c).unwrap();
    assert_eq!(people.len(), 1);
    let store = Store {
        model_sha256: e.sha256.clone(),
        people: fas_edge::access::store::People { people },
    };
    let sim = store.verify("p-obama", &other).unwrap();
    assert!(sim >= THRESHOLD_ONE_TO_ONE, "{sim}");

    let site = d.path().join("site.json");
    assert_eq!(enroll::export(&c, &site).unwrap(), 1);
    let removed = enroll::remove(&c, "p-obama").unwrap();
    assert_eq!(removed.id, "p-obama");
    assert!(enroll::list(&c).unwrap().is_empty());
    assert!(enroll::remove(&c, "p-obama").is_err());

    // A new board (its own key) imports the site.
    let d2 = tempfile::tempdir().unwrap();
    let c2 = enrol_rig(d2.path(), "obama2.jpg", "credential+face");
    assert_eq!(enroll::import(&c2, &site).unwrap(), 1);
    assert_eq!(enroll::list(&c2).unwrap()[0].id, "p-obama");
    // A board whose store was made with another embedding model refuses it, naming both.
    let mut text = std::fs::read_to_string(&site).unwrap();
    text = text.replace(&e.sha256, &"0".repeat(64));
    std::fs::write(&site, text).unwrap();
    let d3 = tempfile::tempdir().unwrap();
    let c3 = enrol_rig(d3.path(), "obama2.jpg", "credential+face");
    let e3 = format!("{:#}", enroll::import(&c3, &site).unwrap_err());
    assert!(
        e3.contains(&"0".repeat(64)) && e3.contains(&e.sha256),
        "{e3}"
    );
    // The log names ids and actions, no names.
    let log = std::fs::read_to_string(d.path().join("state/people.fas.log")).unwrap();
    let actions: Vec<&str> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| match v["action"].as_str().unwrap() {
            "add" => "add",
            "export" => "export",
            "remove" => "remove",
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(actions, ["add", "export", "remove"]);
    assert!(!log.contains("the person"));
}

/// A photo of someone who is not live (the liveness model says so) is never enrolled.
#[test]
fn enrolment_refuses_a_face_that_is_not_live() {
    let d = tempfile::tempdir().unwrap();
    let mut c = enrol_rig(d.path(), "obama2.jpg", "credential+face");
    let tiny = fas_quantize::bundle::fixture::write_tiny_bundle(
        &d.path().join("spoof"),
        &super::pinning(
            TinyModel::constant("not-live", -9.0),
            &["retinaface_mnet025.onnx"],
        ),
    )
    .unwrap();
    c.bundle = Some(tiny.bundle);
    c.keys = Some(tiny.keys);
    let e = format!(
        "{:#}",
        enroll::add(&c, &add_opts("p-photo", &["26:5:1"])).unwrap_err()
    );
    assert!(e.contains("not live"), "{e}");
    assert!(!d.path().join("state/people.fas").exists());
}

/// The power switch during an enrolment: `fas-edge enroll import` killed at random points
/// of its write never leaves a store that does not load — it holds the people from before
/// or after, never a torn file.
#[test]
fn a_store_write_killed_midway_is_never_torn() {
    use std::process::{Command, Stdio};
    let d = tempfile::tempdir().unwrap();
    let c = enrol_rig(d.path(), "obama2.jpg", "credential");
    // A large export: 4000 people with a card each.
    let mut s = Store::empty(NO_MODEL);
    for i in 0..4000u64 {
        s.add(
            Person {
                id: format!("p{i}"),
                name: Some(format!("person {i}")),
                credentials: vec![card(&format!("34:9:{i}"))],
                templates: vec![],
                enrolled_ms: i,
            },
            0,
        )
        .unwrap();
    }
    let site = d.path().join("site.json");
    s.export(&site).unwrap();
    let config = c.config.clone().unwrap();
    let mut outcomes = (0, 0);
    for attempt in 0..12u64 {
        // Start from an empty or a full store alternately.
        if attempt % 2 == 0 {
            let _ = std::fs::remove_file(d.path().join("state/people.fas"));
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_fas-edge"))
            .args(["enroll", "import"])
            .arg(&site)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5 + attempt * 7));
        let _ = child.kill();
        let _ = child.wait();
        let people = enroll::list(&c).expect("the store always loads").len();
        assert!(people == 0 || people == 4000, "{people}");
        if people == 0 {
            outcomes.0 += 1;
        } else {
            outcomes.1 += 1;
        }
    }
    println!(
        "killed imports: {} left the store empty, {} full",
        outcomes.0, outcomes.1
    );
}
