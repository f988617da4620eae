//! Dataset importers on generated trees that follow each dataset's convention (empty files
//! stand in for the media): exact counts, exact records, what is reported as unknown or
//! ignored, and the errors.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fas_core::dataset::{Label, Manifest, Sample, Split};
use fas_train::import::{detect, importer, ImportError, ImportReport, DATASETS};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary directory tree, removed when dropped.
struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Tree {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("fas-import-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Tree(d)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn text(&self, rel: &str, content: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn file(&self, rel: &str) {
        self.text(rel, "");
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn import(name: &str, root: &Path) -> ImportReport {
    let report = importer(name).unwrap().import(root).unwrap();
    check_invariants(name, &report);
    report
}

fn import_err(name: &str, root: &Path) -> ImportError {
    importer(name).unwrap().import(root).unwrap_err()
}

/// What every report promises, whatever the dataset.
fn check_invariants(domain: &str, r: &ImportReport) {
    let mut videos = std::collections::HashSet::new();
    for s in &r.samples {
        s.validate().unwrap();
        assert_eq!(s.domain, domain);
        assert_eq!(s.frame, 0);
        assert!(
            !s.path.starts_with('/') && !s.path.contains('\\'),
            "{}",
            s.path
        );
        assert!(videos.insert(s.video.clone()), "video {} twice", s.video);
    }
    assert!(r.samples.windows(2).all(|w| w[0].path < w[1].path));
    assert!(r.unknown.windows(2).all(|w| w[0] < w[1]));
    assert!(r.ignored.windows(2).all(|w| w[0].0 <= w[1].0));
}

fn sample<'a>(r: &'a ImportReport, path: &str) -> &'a Sample {
    r.samples
        .iter()
        .find(|s| s.path == path)
        .unwrap_or_else(|| panic!("{path} not imported"))
}

/// (label, attack, subject, device, split, video) of one record.
fn fields(s: &Sample) -> (Label, &str, &str, &str, Split, &str) {
    (s.label, &s.attack, &s.subject, &s.device, s.split, &s.video)
}

fn count(r: &ImportReport, f: impl Fn(&Sample) -> bool) -> usize {
    r.samples.iter().filter(|s| f(s)).count()
}

fn attack_count(r: &ImportReport, attack: &str) -> usize {
    count(r, |s| s.attack == attack)
}

fn split_count(r: &ImportReport, split: Split) -> usize {
    count(r, |s| s.split == split)
}

fn unknown(r: &ImportReport) -> Vec<String> {
    r.unknown.iter().map(|p| p.display().to_string()).collect()
}

fn ignored(r: &ImportReport) -> Vec<(String, &str)> {
    r.ignored
        .iter()
        .map(|(p, why)| (p.display().to_string(), why.as_str()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// OULU-NPU

fn oulu_tree() -> Tree {
    let t = Tree::new("oulu");
    for (dir, users) in [
        ("Train_files", &["01", "02"][..]),
        ("Dev_files", &["21"]),
        ("Test_files", &["36"]),
    ] {
        for user in users {
            for phone in 1..=6 {
                for session in 1..=3 {
                    for file in 1..=5 {
                        let stem = format!("{dir}/{phone}_{session}_{user}_{file}");
                        t.file(&format!("{stem}.avi"));
                        t.text(&format!("{stem}.txt"), "0,1,2,3,4\n");
                    }
                }
            }
        }
    }
    t.file("Train_files/1_1_01_6.avi");
    t.file("Train_files/1_1_40_1.avi");
    t.file("Dev_files/readme.mp4");
    t.file("Test_files/sub/6_3_36_5.avi");
    t.text("Protocols/Protocol_1/Train.txt", "+1,1_1_01_1\n");
    t.file("Train_files/.DS_Store");
    t.file("Train_files/._1_1_01_1.avi");
    t
}

#[test]
fn oulu_counts_records_and_strays() {
    let t = oulu_tree();
    let r = import("oulu", t.path());
    assert_eq!(r.samples.len(), 4 * 6 * 3 * 5);
    assert_eq!(split_count(&r, Split::Train), 180);
    assert_eq!(split_count(&r, Split::Dev), 90);
    assert_eq!(split_count(&r, Split::Test), 90);
    assert_eq!(count(&r, |s| s.label == Label::Live), 72);
    for attack in [
        "none",
        "print:printer1",
        "print:printer2",
        "replay:display1",
        "replay:display2",
    ] {
        assert_eq!(attack_count(&r, attack), 72, "{attack}");
    }
    assert_eq!(
        fields(sample(&r, "Test_files/6_3_36_5.avi")),
        (
            Label::Spoof,
            "replay:display2",
            "36",
            "phone6-session3",
            Split::Test,
            "oulu/6_3_36_5"
        )
    );
    assert_eq!(
        fields(sample(&r, "Train_files/1_1_01_1.avi")),
        (
            Label::Live,
            "none",
            "01",
            "phone1-session1",
            Split::Train,
            "oulu/1_1_01_1"
        )
    );
    assert_eq!(
        fields(sample(&r, "Dev_files/4_2_21_2.avi")),
        (
            Label::Spoof,
            "print:printer1",
            "21",
            "phone4-session2",
            Split::Dev,
            "oulu/4_2_21_2"
        )
    );
    assert_eq!(
        unknown(&r),
        [
            "Dev_files/readme.mp4",
            "Test_files/sub/6_3_36_5.avi",
            "Train_files/1_1_01_6.avi"
        ]
    );
    let ign = ignored(&r);
    assert_eq!(ign.len(), 1);
    assert_eq!(ign[0].0, "Train_files/1_1_40_1.avi");
    assert!(ign[0].1.contains("test split"), "{}", ign[0].1);
    // 360 eye-position files, the protocol list, .DS_Store and the AppleDouble file.
    assert_eq!(r.other_files, 363);
}

// ---------------------------------------------------------------------------------------------
// CASIA-FASD

const CASIA_FILES: [&str; 12] = [
    "1", "2", "3", "4", "5", "6", "7", "8", "HR_1", "HR_2", "HR_3", "HR_4",
];

fn casia_tree() -> Tree {
    let t = Tree::new("casia");
    for (release, subjects) in [("train_release", ["1", "2"]), ("test_release", ["1", "30"])] {
        for subject in subjects {
            for f in CASIA_FILES {
                t.file(&format!("{release}/{subject}/{f}.avi"));
            }
        }
    }
    t.file("train_release/1/9.avi");
    t.file("train_release/1/1.mp4");
    t.file("train_release/abc/1.avi");
    t.file("test_release/extra.avi");
    t
}

#[test]
fn casia_counts_records_and_strays() {
    let t = casia_tree();
    let r = import("casia", t.path());
    assert_eq!(r.samples.len(), 48);
    assert_eq!(split_count(&r, Split::Train), 24);
    assert_eq!(split_count(&r, Split::Dev), 0);
    assert_eq!(split_count(&r, Split::Test), 24);
    for attack in ["none", "print:warped", "print:cut", "replay"] {
        assert_eq!(attack_count(&r, attack), 12, "{attack}");
    }
    for device in ["low", "normal", "high"] {
        assert_eq!(count(&r, |s| s.device == device), 16, "{device}");
    }
    assert_eq!(
        fields(sample(&r, "test_release/30/HR_4.avi")),
        (
            Label::Spoof,
            "replay",
            "test-30",
            "high",
            Split::Test,
            "casia/test-30/HR_4"
        )
    );
    assert_eq!(
        fields(sample(&r, "train_release/1/3.avi")),
        (
            Label::Spoof,
            "print:warped",
            "train-1",
            "low",
            Split::Train,
            "casia/train-1/3"
        )
    );
    assert_eq!(
        fields(sample(&r, "train_release/2/2.avi")),
        (
            Label::Live,
            "none",
            "train-2",
            "normal",
            Split::Train,
            "casia/train-2/2"
        )
    );
    // Subject folder "1" of each release is a different person.
    assert_eq!(sample(&r, "test_release/1/1.avi").subject, "test-1");
    assert_eq!(
        unknown(&r),
        [
            "test_release/extra.avi",
            "train_release/1/1.mp4",
            "train_release/1/9.avi",
            "train_release/abc/1.avi"
        ]
    );
    assert!(r.ignored.is_empty());
}

#[test]
fn summary_counts_per_split_label_and_attack() {
    let t = casia_tree();
    let r = import("casia", t.path());
    assert_eq!(
        r.summary(),
        "samples: 48 (live 12, spoof 36)\n\
         split train: 24 (live 6, spoof 18)\n\
         split dev: 0 (live 0, spoof 0)\n\
         split test: 24 (live 6, spoof 18)\n\
         attack none: 12\n\
         attack print:cut: 12\n\
         attack print:warped: 12\n\
         attack replay: 12\n\
         unknown: 4 (media files matching no convention; not imported)\n\
         ignored: 0 (left out on purpose; see the reasons)\n\
         other files: 0 (not media)\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Replay-Attack

fn replay_tree() -> Tree {
    let t = Tree::new("replay");
    for (split, client) in [("train", "001"), ("devel", "003"), ("test", "101")] {
        for light in ["controlled", "adverse"] {
            for n in 1..=2 {
                t.file(&format!(
                    "{split}/real/client{client}_session01_webcam_authenticate_{light}_{n}.mov"
                ));
            }
            for support in ["fixed", "hand"] {
                for (a, medium) in [
                    ("print", "highdef_photo"),
                    ("mobile", "mobile_photo"),
                    ("mobile", "mobile_video"),
                    ("highdef", "highdef_photo"),
                    ("highdef", "highdef_video"),
                ] {
                    t.file(&format!(
                        "{split}/attack/{support}/attack_{a}_client{client}_session01_{medium}_{light}.mov"
                    ));
                }
            }
        }
    }
    t.file("enroll/train/client001_session01_enroll_controlled_1.mov");
    t.file("enroll/devel/client003_session01_enroll_adverse_1.mov");
    t.file("train/attack/fixed/attack_print_client001_session01_mobile_video_adverse.mov");
    t.file("train/real/client001_session01_webcam_authenticate_dim_1.mov");
    t.text(
        "face-locations/train/real/client001_session01_webcam_authenticate_adverse_1.face",
        "0 0 0 0 0\n",
    );
    t
}

#[test]
fn replay_counts_records_and_strays() {
    let t = replay_tree();
    let r = import("replay", t.path());
    assert_eq!(r.samples.len(), 72);
    for split in [Split::Train, Split::Dev, Split::Test] {
        assert_eq!(split_count(&r, split), 24, "{split:?}");
    }
    for attack in [
        "none",
        "print",
        "replay:mobile-photo",
        "replay:mobile-video",
        "replay:highdef-photo",
        "replay:highdef-video",
    ] {
        assert_eq!(attack_count(&r, attack), 12, "{attack}");
    }
    assert_eq!(
        fields(sample(
            &r,
            "devel/real/client003_session01_webcam_authenticate_adverse_2.mov"
        )),
        (
            Label::Live,
            "none",
            "003",
            "webcam-adverse",
            Split::Dev,
            "replay/real/client003_session01_webcam_authenticate_adverse_2"
        )
    );
    assert_eq!(
        fields(sample(
            &r,
            "test/attack/hand/attack_print_client101_session01_highdef_photo_controlled.mov"
        )),
        (
            Label::Spoof,
            "print",
            "101",
            "webcam-controlled",
            Split::Test,
            "replay/hand/attack_print_client101_session01_highdef_photo_controlled"
        )
    );
    // The same attack name under fixed/ and hand/ stays two videos.
    let fixed = sample(
        &r,
        "train/attack/fixed/attack_highdef_client001_session01_highdef_video_adverse.mov",
    );
    let hand = sample(
        &r,
        "train/attack/hand/attack_highdef_client001_session01_highdef_video_adverse.mov",
    );
    assert_eq!(fixed.attack, "replay:highdef-video");
    assert_ne!(fixed.video, hand.video);
    assert_eq!(
        unknown(&r),
        [
            "train/attack/fixed/attack_print_client001_session01_mobile_video_adverse.mov",
            "train/real/client001_session01_webcam_authenticate_dim_1.mov"
        ]
    );
    let ign = ignored(&r);
    assert_eq!(
        ign.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        [
            "enroll/devel/client003_session01_enroll_adverse_1.mov",
            "enroll/train/client001_session01_enroll_controlled_1.mov"
        ]
    );
    assert!(ign[0].1.contains("enrolment"), "{}", ign[0].1);
    assert_eq!(r.other_files, 1);
}

// ---------------------------------------------------------------------------------------------
// MSU-MFSD

fn msu_videos(t: &Tree, client: &str) {
    for (camera, ext) in [("android", "mp4"), ("laptop", "mov")] {
        t.file(&format!(
            "scene01/real/real_client{client}_{camera}_SD_scene01.{ext}"
        ));
        for medium in ["ipad_video", "iphone_video", "printed_photo"] {
            t.file(&format!(
                "scene01/attack/attack_client{client}_{camera}_SD_{medium}_scene01.{ext}"
            ));
        }
    }
}

fn msu_tree() -> Tree {
    let t = Tree::new("msu");
    for client in ["001", "002", "003", "004", "005"] {
        msu_videos(&t, client);
    }
    t.text("train_sub_list.txt", "01\n02\n");
    t.text("test_sub_list.txt", "03 04\n");
    t.file("scene01/attack/attack_client001_laptop_SD_ipad_photo_scene01.mov");
    t.text(
        "scene01/real/real_client001_android_SD_scene01.face",
        "1 2 3 4\n",
    );
    t
}

#[test]
fn msu_counts_records_and_strays() {
    let t = msu_tree();
    let r = import("msu", t.path());
    assert_eq!(r.samples.len(), 32);
    assert_eq!(split_count(&r, Split::Train), 16);
    assert_eq!(split_count(&r, Split::Dev), 0);
    assert_eq!(split_count(&r, Split::Test), 16);
    assert_eq!(attack_count(&r, "none"), 8);
    for attack in ["replay:ipad", "replay:iphone", "print"] {
        assert_eq!(attack_count(&r, attack), 8, "{attack}");
    }
    assert_eq!(
        fields(sample(
            &r,
            "scene01/attack/attack_client003_android_SD_iphone_video_scene01.mp4"
        )),
        (
            Label::Spoof,
            "replay:iphone",
            "003",
            "android-sd",
            Split::Test,
            "msu/attack_client003_android_SD_iphone_video_scene01"
        )
    );
    assert_eq!(
        fields(sample(
            &r,
            "scene01/real/real_client002_laptop_SD_scene01.mov"
        )),
        (
            Label::Live,
            "none",
            "002",
            "laptop-sd",
            Split::Train,
            "msu/real_client002_laptop_SD_scene01"
        )
    );
    assert_eq!(
        unknown(&r),
        ["scene01/attack/attack_client001_laptop_SD_ipad_photo_scene01.mov"]
    );
    let ign = ignored(&r);
    assert_eq!(ign.len(), 8);
    assert!(ign.iter().all(|(p, why)| p.contains("client005")
        && why.contains("client 005 is in neither train_sub_list.txt nor test_sub_list.txt")));
    // The two lists and the .face file.
    assert_eq!(r.other_files, 3);
}

#[test]
fn msu_list_errors_name_the_file_and_line() {
    let t = msu_tree();
    std::fs::remove_file(t.path().join("test_sub_list.txt")).unwrap();
    let e = import_err("msu", t.path());
    assert!(matches!(e, ImportError::MissingFile { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: missing",
            t.path().join("test_sub_list.txt").display()
        )),
        "{msg}"
    );

    t.text("test_sub_list.txt", "03\nx4\n");
    let msg = import_err("msu", t.path()).to_string();
    let file = t.path().join("test_sub_list.txt").display().to_string();
    assert!(
        msg.starts_with(&format!("{file}:2: \"x4\" is not a client number")),
        "{msg}"
    );

    t.text("test_sub_list.txt", "03\n04 2\n");
    let msg = import_err("msu", t.path()).to_string();
    assert!(
        msg.starts_with(&format!(
            "{file}:2: client 2 is also in train_sub_list.txt (line 2)"
        )),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// SiW-M

const SIWM_ATTACKS: [(&str, &str); 13] = [
    ("Paper", "print"),
    ("Replay", "replay"),
    ("Makeup/Cosmetic", "makeup:cosmetic"),
    ("Makeup/Impersonation", "makeup:impersonation"),
    ("Makeup/Obfuscation", "makeup:obfuscation"),
    ("Mask/HalfMask", "mask:half"),
    ("Mask/MannequinHead", "mask:mannequin"),
    ("Mask/PaperMask", "mask:paper"),
    ("Mask/SiliconeMask", "mask:silicone"),
    ("Mask/TransparentMask", "mask:transparent"),
    ("Partial/FunnyeyeGlasses", "partial:funnyeye"),
    ("Partial/PaperGlasses", "partial:paperglasses"),
    ("Partial/PaperCut", "partial:papercut"),
];

fn siwm_tree() -> Tree {
    let t = Tree::new("siwm");
    for n in 1..=3 {
        t.file(&format!("Live/Train/Live_{n}.mov"));
    }
    for n in [600, 601] {
        t.file(&format!("Live/Test/Live_{n}.mov"));
    }
    for (dir, _) in SIWM_ATTACKS {
        t.file(&format!("{dir}/{}_1.mov", dir.replace('/', "_")));
    }
    t.file("Mask/Silicone/Mask_Silicone_2.mov");
    t.file("Live/Dev/Live_9.mov");
    t.text("Paper/Paper_1.face", "0 0 0 0\n");
    t
}

#[test]
fn siwm_counts_records_and_strays() {
    let t = siwm_tree();
    let r = import("siwm", t.path());
    assert_eq!(r.samples.len(), 18);
    assert_eq!(split_count(&r, Split::Train), 16);
    assert_eq!(split_count(&r, Split::Test), 2);
    assert_eq!(attack_count(&r, "none"), 5);
    for (dir, attack) in SIWM_ATTACKS {
        let path = format!("{dir}/{}_1.mov", dir.replace('/', "_"));
        let s = sample(&r, &path);
        assert_eq!(
            (s.label, s.attack.as_str(), s.split),
            (Label::Spoof, attack, Split::Train),
            "{path}"
        );
        assert_eq!(attack_count(&r, attack), 1);
    }
    assert_eq!(
        fields(sample(&r, "Mask/SiliconeMask/Mask_SiliconeMask_1.mov")),
        (
            Label::Spoof,
            "mask:silicone",
            "unknown",
            "unknown",
            Split::Train,
            "siwm/Mask/SiliconeMask/Mask_SiliconeMask_1"
        )
    );
    assert_eq!(
        fields(sample(&r, "Live/Test/Live_601.mov")),
        (
            Label::Live,
            "none",
            "unknown",
            "unknown",
            Split::Test,
            "siwm/Live/Test/Live_601"
        )
    );
    assert_eq!(
        unknown(&r),
        ["Live/Dev/Live_9.mov", "Mask/Silicone/Mask_Silicone_2.mov"]
    );
    assert_eq!(r.other_files, 1);
}

#[test]
fn same_video_twice_is_ignored_not_guessed() {
    let t = siwm_tree();
    t.file("Paper/Paper_1.mp4");
    let r = import("siwm", t.path());
    assert_eq!(r.samples.len(), 17);
    assert_eq!(attack_count(&r, "print"), 0);
    let ign = ignored(&r);
    assert_eq!(
        ign.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["Paper/Paper_1.mov", "Paper/Paper_1.mp4"]
    );
    assert!(ign[0].1.contains("same video id"), "{}", ign[0].1);
}

// ---------------------------------------------------------------------------------------------
// CelebA-Spoof

fn label(spoof_type: u8, illumination: u8, environment: u8, spoof: u8) -> Vec<u8> {
    let mut v = vec![0u8; 44];
    v[5] = 1; // a face attribute, to show the first 40 are not read
    v[40] = spoof_type;
    v[41] = illumination;
    v[42] = environment;
    v[43] = spoof;
    v
}

fn celeba_tree() -> Tree {
    let t = Tree::new("celeba");
    let train = serde_json::json!({
        "Data/train/10/live/000001.jpg": label(0, 0, 0, 0),
        "Data/train/10/spoof/494405.png": label(9, 1, 1, 1),
        "Data/train/11/spoof/494406.png": label(1, 4, 2, 1),
        "Data/train/11/live/000002.jpg": label(3, 1, 1, 1),
    });
    let test = serde_json::json!({
        "Data/test/20/live/000100.jpg": label(0, 0, 0, 0),
        "Data/test/20/spoof/497050.png": label(10, 3, 1, 1),
        "Data/test/20/spoof/497051.png": label(2, 1, 1, 1),
    });
    t.text(
        "metas/intra_test/train_label.json",
        &serde_json::to_string_pretty(&train).unwrap(),
    );
    t.text("metas/intra_test/test_label.json", &test.to_string());
    for img in [
        "Data/train/10/live/000001.jpg",
        "Data/train/10/spoof/494405.png",
        "Data/train/11/spoof/494406.png",
        "Data/train/11/live/000002.jpg",
        "Data/train/11/spoof/494407.png",
        "Data/test/20/live/000100.jpg",
        "Data/test/20/spoof/497050.png",
    ] {
        t.file(img);
        t.text(
            &img.replace(".jpg", "_BB.txt").replace(".png", "_BB.txt"),
            "1 2 3 4 0.9\n",
        );
    }
    t.file("Data/train/10/other/x.jpg");
    t.file("Data/val/1/live/a.jpg");
    t
}

#[test]
fn celeba_counts_records_and_strays() {
    let t = celeba_tree();
    let r = import("celeba", t.path());
    assert_eq!(r.samples.len(), 5);
    assert_eq!(split_count(&r, Split::Train), 3);
    assert_eq!(split_count(&r, Split::Test), 2);
    assert_eq!(
        fields(sample(&r, "Data/train/10/spoof/494405.png")),
        (
            Label::Spoof,
            "replay:phone",
            "10",
            "indoor-normal",
            Split::Train,
            "celeba/train/10/spoof/494405"
        )
    );
    assert_eq!(
        fields(sample(&r, "Data/train/11/spoof/494406.png")),
        (
            Label::Spoof,
            "print:photo",
            "11",
            "outdoor-dark",
            Split::Train,
            "celeba/train/11/spoof/494406"
        )
    );
    assert_eq!(
        fields(sample(&r, "Data/test/20/spoof/497050.png")),
        (
            Label::Spoof,
            "mask:3d",
            "20",
            "indoor-back",
            Split::Test,
            "celeba/test/20/spoof/497050"
        )
    );
    assert_eq!(
        fields(sample(&r, "Data/test/20/live/000100.jpg")),
        (
            Label::Live,
            "none",
            "20",
            "web",
            Split::Test,
            "celeba/test/20/live/000100"
        )
    );
    assert_eq!(
        unknown(&r),
        ["Data/train/10/other/x.jpg", "Data/val/1/live/a.jpg"]
    );
    let ign = ignored(&r);
    assert_eq!(
        ign.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        [
            "Data/test/20/spoof/497051.png",
            "Data/train/11/live/000002.jpg",
            "Data/train/11/spoof/494407.png"
        ]
    );
    assert!(
        ign[0]
            .1
            .contains("listed in metas/intra_test/test_label.json but not found"),
        "{}",
        ign[0].1
    );
    assert!(
        ign[1].1.contains("contradicts the live/ folder"),
        "{}",
        ign[1].1
    );
    assert!(
        ign[2]
            .1
            .contains("not in metas/intra_test/train_label.json"),
        "{}",
        ign[2].1
    );
    // Seven _BB.txt boxes and the two label files.
    assert_eq!(r.other_files, 9);
}

#[test]
fn celeba_label_errors_name_the_file_and_line() {
    let t = celeba_tree();
    let file = t
        .path()
        .join("metas/intra_test/test_label.json")
        .display()
        .to_string();
    std::fs::remove_file(&file).unwrap();
    let e = import_err("celeba", t.path());
    assert!(matches!(e, ImportError::MissingFile { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!("{file}: missing")),
        "{e}"
    );

    t.text(
        "metas/intra_test/test_label.json",
        "{\n\"Data/test/20/live/000100.jpg\": [0, 0],\n\"x\": [0,, 1]\n}\n",
    );
    let e = import_err("celeba", t.path());
    let ImportError::Json { line, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(*line, 2, "{e}");
    assert!(
        e.to_string()
            .contains("\"Data/test/20/live/000100.jpg\": 2 attributes, expected 44"),
        "{e}"
    );

    // A valid entry on line 2, a syntax error on line 3.
    let valid: Vec<String> = label(0, 0, 0, 0).iter().map(u8::to_string).collect();
    t.text(
        "metas/intra_test/test_label.json",
        &format!(
            "{{\n\"Data/test/20/live/000100.jpg\": [{}],\n\"y\": [0,, 1]\n}}\n",
            valid.join(", ")
        ),
    );
    let e = import_err("celeba", t.path());
    assert!(e.to_string().starts_with(&format!("{file}:3:")), "{e}");

    t.text(
        "metas/intra_test/test_label.json",
        &format!("{{\"k\": [0,0,0,\"a\",{}]}}", valid[4..].join(",")),
    );
    let e = import_err("celeba", t.path()).to_string();
    assert!(
        e.starts_with(&format!("{file}:1:"))
            && e.contains("\"k\": attribute 3 is \"a\", expected an integer"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Across datasets

#[test]
fn each_tree_is_recognised_as_its_own_dataset_only() {
    let trees = [
        ("oulu", oulu_tree()),
        ("casia", casia_tree()),
        ("replay", replay_tree()),
        ("msu", msu_tree()),
        ("siwm", siwm_tree()),
        ("celeba", celeba_tree()),
    ];
    for (name, tree) in &trees {
        assert_eq!(detect(tree.path()), [*name]);
        for &other in DATASETS.iter().filter(|n| *n != name) {
            let e = import_err(other, tree.path());
            assert!(
                matches!(e, ImportError::WrongDataset { found, .. } if found == *name),
                "{other} on {name}: {e:?}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("looks like the {name} dataset, not {other}")),
                "{msg}"
            );
        }
    }
}

#[test]
fn imports_are_deterministic_and_save_as_manifests() {
    let t = replay_tree();
    let a = import("replay", t.path());
    let b = import("replay", t.path());
    assert_eq!(a, b);
    let out = Tree::new("manifest");
    let path = out.path().join("manifest.jsonl");
    a.manifest().save(&path).unwrap();
    assert_eq!(Manifest::load(&path).unwrap(), a.manifest());
}

#[test]
fn root_errors_say_what_to_pass() {
    let t = Tree::new("roots");
    let missing = t.path().join("nope");
    let e = import_err("oulu", &missing);
    assert!(matches!(e, ImportError::MissingRoot { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}: does not exist", missing.display())),
        "{e}"
    );

    t.file("a-file");
    let e = import_err("casia", &t.path().join("a-file"));
    assert!(matches!(e, ImportError::NotADirectory { .. }), "{e:?}");

    std::fs::create_dir_all(t.path().join("empty")).unwrap();
    let e = import_err("replay", &t.path().join("empty"));
    let ImportError::Layout { hint, .. } = &e else {
        panic!("{e:?}");
    };
    assert!(hint.is_empty());
    assert!(e.to_string().contains("not a replay dataset root"), "{e}");

    // One level too high: the message points at the real root.
    t.file("datasets/OULU-NPU/Train_files/1_1_01_1.avi");
    let e = import_err("oulu", &t.path().join("datasets"));
    assert!(
        e.to_string().contains(&format!(
            "{} does: pass that as the root",
            t.path().join("datasets/OULU-NPU").display()
        )),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn links_are_followed_once_and_broken_links_reported() {
    let t = Tree::new("links");
    t.file("train_release/1/1.avi");
    std::os::unix::fs::symlink(t.path(), t.path().join("train_release/1/loop")).unwrap();
    std::os::unix::fs::symlink(
        t.path().join("nowhere.avi"),
        t.path().join("train_release/1/2.avi"),
    )
    .unwrap();
    let r = import("casia", t.path());
    assert_eq!(r.samples.len(), 1);
    assert_eq!(
        ignored(&r),
        [(
            "train_release/1/2.avi".to_string(),
            "broken symbolic link: its target does not exist"
        )]
    );
}

#[cfg(unix)]
#[test]
fn non_utf8_names_are_unknown() {
    use std::os::unix::ffi::OsStrExt;
    let t = Tree::new("utf8");
    t.file("train_release/1/1.avi");
    let name = std::ffi::OsStr::from_bytes(b"\xff.avi");
    std::fs::write(t.path().join("train_release/1").join(name), b"").unwrap();
    let r = import("casia", t.path());
    assert_eq!(r.samples.len(), 1);
    assert_eq!(r.unknown, [PathBuf::from("train_release/1").join(name)]);
}
