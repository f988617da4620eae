//! OULU-NPU (Boulkenafet et al., "OULU-NPU: A mobile face presentation attack database with
//! real-world variations", FG 2017).
//!
//! Layout: `Train_files/`, `Dev_files/`, `Test_files/`, each holding
//! `{phone}_{session}_{user}_{file}.avi` (and an eye-position `.txt` per video, which is not
//! media and only counted). Phone 1–6, session 1–3, user 01–55 (two digits), file 1 = live,
//! 2/3 = print attack with printer 1/2, 4/5 = video replay on display 1/2.
//!
//! Records: attack `none`, `print:printer1`, `print:printer2`, `replay:display1`,
//! `replay:display2`; subject = the user as written (`"07"`); device =
//! `phone{p}-session{s}`; split from the folder; video = `oulu/{stem}`.
//!
//! The official split is by user: 1–20 train, 21–35 dev, 36–55 test. A video whose user
//! belongs to another folder's split is ignored with that reason rather than imported
//! under either split. Other media (the `Protocols/` lists are text) are unknown.

use std::path::Path;

use fas_core::dataset::{Split, ATTACK_NONE};

use super::{check_root, collect, digits, is_dir, stem_with_ext, walk};
use super::{ImportError, ImportReport, Importer, Record, Verdict};

/// The OULU-NPU importer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Oulu;

const FOLDERS: [(&str, Split); 3] = [
    ("Train_files", Split::Train),
    ("Dev_files", Split::Dev),
    ("Test_files", Split::Test),
];

impl Importer for Oulu {
    fn name(&self) -> &'static str {
        "oulu"
    }

    fn recognises(&self, root: &Path) -> bool {
        FOLDERS.iter().any(|(d, _)| is_dir(root, d))
    }

    fn expected_layout(&self) -> &'static str {
        "Train_files/, Dev_files/ and Test_files/ with {phone}_{session}_{user}_{file}.avi videos"
    }

    fn import(&self, root: &Path) -> Result<ImportReport, ImportError> {
        check_root(self, root)?;
        Ok(collect(self.name(), walk(root)?, |parts, _| {
            classify(parts)
        }))
    }
}

/// The split a user belongs to in the official protocol.
fn official_split(user: u32) -> Option<Split> {
    match user {
        1..=20 => Some(Split::Train),
        21..=35 => Some(Split::Dev),
        36..=55 => Some(Split::Test),
        _ => None,
    }
}

fn classify(parts: &[&str]) -> Verdict {
    let [dir, file] = parts else {
        return Verdict::Unknown;
    };
    let Some(&(_, split)) = FOLDERS.iter().find(|(d, _)| d == dir) else {
        return Verdict::Unknown;
    };
    let Some(stem) = stem_with_ext(file, &["avi"]) else {
        return Verdict::Unknown;
    };
    let fields: Vec<&str> = stem.split('_').collect();
    let [p, s, u, f] = fields[..] else {
        return Verdict::Unknown;
    };
    let (Some(phone @ 1..=6), Some(session @ 1..=3), Some(user), Some(kind @ 1..=5)) =
        (digits(p, 1), digits(s, 1), digits(u, 2), digits(f, 1))
    else {
        return Verdict::Unknown;
    };
    let Some(official) = official_split(user) else {
        return Verdict::Unknown;
    };
    if official != split {
        return Verdict::Ignored(format!(
            "user {u} belongs to the {} split of OULU-NPU, but the file is in {dir}/: move it to the right folder",
            official.as_str()
        ));
    }
    let attack = match kind {
        1 => ATTACK_NONE,
        2 => "print:printer1",
        3 => "print:printer2",
        4 => "replay:display1",
        _ => "replay:display2",
    };
    Verdict::Sample(Record {
        attack: attack.into(),
        subject: u.into(),
        device: format!("phone{phone}-session{session}"),
        split,
        video: format!("oulu/{stem}"),
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
        let r = record(&["Dev_files", "3_2_21_3.avi"]);
        assert_eq!(
            (
                r.attack.as_str(),
                r.subject.as_str(),
                r.device.as_str(),
                r.split
            ),
            ("print:printer2", "21", "phone3-session2", Split::Dev)
        );
        assert_eq!(r.video, "oulu/3_2_21_3");
        assert_eq!(record(&["Train_files", "1_1_01_1.avi"]).attack, "none");
        assert_eq!(
            record(&["Test_files", "6_3_55_4.avi"]).attack,
            "replay:display1"
        );
    }

    #[test]
    fn out_of_range_fields_are_unknown() {
        for name in [
            "0_1_01_1.avi",
            "7_1_01_1.avi",
            "1_4_01_1.avi",
            "1_1_1_1.avi",
            "1_1_00_1.avi",
            "1_1_56_1.avi",
            "1_1_01_6.avi",
            "1_1_01_1_2.avi",
            "1_1_01_1.mp4",
        ] {
            assert!(
                matches!(classify(&["Train_files", name]), Verdict::Unknown),
                "{name}"
            );
        }
        assert!(matches!(
            classify(&["Train_files", "x", "1_1_01_1.avi"]),
            Verdict::Unknown
        ));
    }

    #[test]
    fn user_in_the_wrong_split_folder_is_ignored() {
        let Verdict::Ignored(why) = classify(&["Train_files", "1_1_40_1.avi"]) else {
            panic!("imported");
        };
        assert!(why.contains("user 40 belongs to the test split"), "{why}");
    }
}
