//! Idiap Replay-Attack (Chingovska, Anjos, Marcel, "On the effectiveness of local binary
//! patterns in face anti-spoofing", BIOSIG 2012).
//!
//! Layout, per split folder `train/`, `devel/`, `test/`:
//! - `real/client{NNN}_session{NN}_webcam_authenticate_{light}_{n}.mov` — live;
//! - `attack/{support}/attack_{attack}_client{NNN}_session{NN}_{medium}_{content}_{light}.mov`
//!   with support `fixed` or `hand`, light `controlled` or `adverse`, and
//!   (attack, medium, content) one of (print, highdef, photo) — a paper print of a
//!   high-resolution photo —, (mobile, mobile, photo|video) — an iPhone screen —, or
//!   (highdef, highdef, photo|video) — an iPad screen.
//!
//! Records: attack `none`, `print`, `replay:mobile-photo`, `replay:mobile-video`,
//! `replay:highdef-photo`, `replay:highdef-video`; subject = the client number as written
//! (`"001"`); device = `webcam-{light}` (every video is from the same laptop webcam, the
//! lighting is what varies); split train / dev / test from the folder. The support
//! (`fixed`/`hand`) is kept in the video id: `replay/real/{stem}` or
//! `replay/{support}/{stem}` (the same attack name exists under both supports).
//!
//! `enroll/` holds live enrolment videos meant for the face-verification protocols; the
//! anti-spoofing protocols (`grandtest` and its subsets) do not use them, so they are
//! listed as ignored. Any other name is unknown; (attack, medium, content) combinations
//! outside the three above are unknown too.

use std::path::Path;

use fas_core::dataset::{Split, ATTACK_NONE};

use super::{check_root, collect, digits, is_dir, stem_with_ext, walk};
use super::{ImportError, ImportReport, Importer, Record, Verdict};

/// The Replay-Attack importer.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayAttack;

const SPLITS: [(&str, Split); 3] = [
    ("train", Split::Train),
    ("devel", Split::Dev),
    ("test", Split::Test),
];

const ENROLL_REASON: &str =
    "enrolment video (face-verification protocols only; the anti-spoofing protocols do not use enroll/)";

impl Importer for ReplayAttack {
    fn name(&self) -> &'static str {
        "replay"
    }

    fn recognises(&self, root: &Path) -> bool {
        SPLITS.iter().any(|(d, _)| {
            let split = root.join(d);
            is_dir(&split, "real") || is_dir(&split, "attack")
        })
    }

    fn expected_layout(&self) -> &'static str {
        "train/, devel/ and test/, each with real/ and attack/{fixed,hand}/ .mov videos"
    }

    fn import(&self, root: &Path) -> Result<ImportReport, ImportError> {
        check_root(self, root)?;
        Ok(collect(self.name(), walk(root)?, |parts, _| {
            classify(parts)
        }))
    }
}

/// `client{NNN}` → `NNN`.
fn client(token: &str) -> Option<&str> {
    token
        .strip_prefix("client")
        .filter(|n| digits(n, 3).is_some())
}

fn session(token: &str) -> bool {
    token
        .strip_prefix("session")
        .is_some_and(|n| digits(n, 2).is_some())
}

fn light(token: &str) -> Option<&'static str> {
    match token {
        "controlled" => Some("controlled"),
        "adverse" => Some("adverse"),
        _ => None,
    }
}

fn classify(parts: &[&str]) -> Verdict {
    if parts.first() == Some(&"enroll") {
        return Verdict::Ignored(ENROLL_REASON.into());
    }
    let (split, kind, support, file) = match parts {
        [split, "real", file] => (split, "real", None, file),
        [split, "attack", support @ ("fixed" | "hand"), file] => {
            (split, "attack", Some(*support), file)
        }
        _ => return Verdict::Unknown,
    };
    let Some(&(_, split)) = SPLITS.iter().find(|(d, _)| d == split) else {
        return Verdict::Unknown;
    };
    let Some(stem) = stem_with_ext(file, &["mov"]) else {
        return Verdict::Unknown;
    };
    let t: Vec<&str> = stem.split('_').collect();
    let (attack, subject, lighting, video) = match (kind, &t[..]) {
        ("real", [c, s, "webcam", "authenticate", l, n])
            if session(s) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let (Some(c), Some(l)) = (client(c), light(l)) else {
                return Verdict::Unknown;
            };
            (ATTACK_NONE, c, l, format!("replay/real/{stem}"))
        }
        ("attack", ["attack", a, c, s, medium, content, l]) if session(s) => {
            let attack = match (*a, *medium, *content) {
                ("print", "highdef", "photo") => "print",
                ("mobile", "mobile", "photo") => "replay:mobile-photo",
                ("mobile", "mobile", "video") => "replay:mobile-video",
                ("highdef", "highdef", "photo") => "replay:highdef-photo",
                ("highdef", "highdef", "video") => "replay:highdef-video",
                _ => return Verdict::Unknown,
            };
            let (Some(c), Some(l), Some(support)) = (client(c), light(l), support) else {
                return Verdict::Unknown;
            };
            (attack, c, l, format!("replay/{support}/{stem}"))
        }
        _ => return Verdict::Unknown,
    };
    Verdict::Sample(Record {
        attack: attack.into(),
        subject: subject.into(),
        device: format!("webcam-{lighting}"),
        split,
        video,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(parts: &[&str]) -> Record {
        match classify(parts) {
            Verdict::Sample(r) => r,
            _ => panic!("{parts:?} not imported"),
        }
    }

    #[test]
    fn names_map_to_records() {
        let r = record(&[
            "devel",
            "real",
            "client003_session02_webcam_authenticate_adverse_2.mov",
        ]);
        assert_eq!(
            (
                r.attack.as_str(),
                r.subject.as_str(),
                r.device.as_str(),
                r.split
            ),
            ("none", "003", "webcam-adverse", Split::Dev)
        );
        let r = record(&[
            "test",
            "attack",
            "hand",
            "attack_print_client101_session01_highdef_photo_controlled.mov",
        ]);
        assert_eq!(r.attack, "print");
        assert_eq!(
            r.video,
            "replay/hand/attack_print_client101_session01_highdef_photo_controlled"
        );
        let r = record(&[
            "train",
            "attack",
            "fixed",
            "attack_mobile_client001_session01_mobile_video_adverse.mov",
        ]);
        assert_eq!(r.attack, "replay:mobile-video");
    }

    #[test]
    fn inconsistent_or_malformed_names_are_unknown() {
        for parts in [
            &[
                "train",
                "attack",
                "fixed",
                "attack_print_client001_session01_mobile_video_adverse.mov",
            ][..],
            &[
                "train",
                "attack",
                "tripod",
                "attack_print_client001_session01_highdef_photo_adverse.mov",
            ],
            &[
                "train",
                "attack",
                "fixed",
                "attack_print_client1_session01_highdef_photo_adverse.mov",
            ],
            &[
                "train",
                "real",
                "client001_session01_webcam_authenticate_dim_1.mov",
            ],
            &[
                "train",
                "real",
                "client001_session01_webcam_authenticate_adverse_1.avi",
            ],
            &[
                "validation",
                "real",
                "client001_session01_webcam_authenticate_adverse_1.mov",
            ],
        ] {
            assert!(matches!(classify(parts), Verdict::Unknown), "{parts:?}");
        }
    }

    #[test]
    fn enrolment_videos_are_ignored() {
        assert!(matches!(
            classify(&[
                "enroll",
                "train",
                "client001_session01_enroll_adverse_1.mov"
            ]),
            Verdict::Ignored(_)
        ));
    }
}
