//! CASIA-FASD (Zhang et al., "A face antispoofing database with diverse attacks", ICB 2012).
//!
//! Layout: `train_release/{subject}/` (subjects 1–20) and `test_release/{subject}/`
//! (subjects 1–30), each holding `1.avi` … `8.avi` and `HR_1.avi` … `HR_4.avi`.
//! `1, 2, HR_1` are live; `3, 4, HR_2` warped photo; `5, 6, HR_3` cut photo; `7, 8, HR_4`
//! video replay. Odd numbers are low quality, even numbers normal quality, `HR_*` high
//! quality (the three capture cameras).
//!
//! Records: attack `none`, `print:warped`, `print:cut`, `replay`; device `low`, `normal` or
//! `high`; split train or test. Subject folders restart at 1 in each release but hold
//! different people, so the subject is `train-{n}` / `test-{n}`; video =
//! `casia/{train|test}-{n}/{stem}`.
//!
//! CASIA-FASD has no dev split: nothing is imported as dev; protocols take their dev
//! subjects out of train.

use std::path::Path;

use fas_core::dataset::{Split, ATTACK_NONE};

use super::{check_root, collect, is_dir, stem_with_ext, walk};
use super::{ImportError, ImportReport, Importer, Record, Verdict};

/// The CASIA-FASD importer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Casia;

const RELEASES: [(&str, Split, &str); 2] = [
    ("train_release", Split::Train, "train"),
    ("test_release", Split::Test, "test"),
];

impl Importer for Casia {
    fn name(&self) -> &'static str {
        "casia"
    }

    fn recognises(&self, root: &Path) -> bool {
        RELEASES.iter().any(|(d, _, _)| is_dir(root, d))
    }

    fn expected_layout(&self) -> &'static str {
        "train_release/ and test_release/ with one folder per subject of 1..8.avi and HR_1..HR_4.avi"
    }

    fn import(&self, root: &Path) -> Result<ImportReport, ImportError> {
        check_root(self, root)?;
        Ok(collect(self.name(), walk(root)?, |parts, _| {
            classify(parts)
        }))
    }
}

fn classify(parts: &[&str]) -> Verdict {
    let [release, subject, file] = parts else {
        return Verdict::Unknown;
    };
    let Some(&(_, split, tag)) = RELEASES.iter().find(|(d, _, _)| d == release) else {
        return Verdict::Unknown;
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !numeric(subject) {
        return Verdict::Unknown;
    }
    let Some(stem) = stem_with_ext(file, &["avi"]) else {
        return Verdict::Unknown;
    };
    let (attack, device) = match stem {
        "1" => (ATTACK_NONE, "low"),
        "2" => (ATTACK_NONE, "normal"),
        "HR_1" => (ATTACK_NONE, "high"),
        "3" => ("print:warped", "low"),
        "4" => ("print:warped", "normal"),
        "HR_2" => ("print:warped", "high"),
        "5" => ("print:cut", "low"),
        "6" => ("print:cut", "normal"),
        "HR_3" => ("print:cut", "high"),
        "7" => ("replay", "low"),
        "8" => ("replay", "normal"),
        "HR_4" => ("replay", "high"),
        _ => return Verdict::Unknown,
    };
    Verdict::Sample(Record {
        attack: attack.into(),
        subject: format!("{tag}-{subject}"),
        device: device.into(),
        split,
        video: format!("casia/{tag}-{subject}/{stem}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_records() {
        let Verdict::Sample(r) = classify(&["test_release", "30", "HR_3.avi"]) else {
            panic!("not imported");
        };
        assert_eq!(r.attack, "print:cut");
        assert_eq!(r.device, "high");
        assert_eq!(r.subject, "test-30");
        assert_eq!(r.split, Split::Test);
        assert_eq!(r.video, "casia/test-30/HR_3");
    }

    #[test]
    fn other_names_are_unknown() {
        for parts in [
            &["train_release", "1", "9.avi"][..],
            &["train_release", "1", "HR_5.avi"],
            &["train_release", "1", "hr_1.avi"],
            &["train_release", "1", "1.mp4"],
            &["train_release", "s1", "1.avi"],
            &["dev_release", "1", "1.avi"],
            &["train_release", "1.avi"],
        ] {
            assert!(matches!(classify(parts), Verdict::Unknown), "{parts:?}");
        }
    }
}
