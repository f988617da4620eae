//! SiW-M, Spoof in the Wild with Multiple attacks (Liu, Stehouwer, Jourabloo, Liu, "Deep tree
//! learning for zero-shot face anti-spoofing", CVPR 2019).
//!
//! Layout: one folder per type, videos (`.mov`; `.mp4` accepted) directly inside:
//! `Live/Train/`, `Live/Test/` (or `Live/` itself), `Paper/`, `Replay/`,
//! `Makeup/{Cosmetic,Impersonation,Obfuscation}/`,
//! `Mask/{HalfMask,MannequinHead,PaperMask,SiliconeMask,TransparentMask}/`,
//! `Partial/{FunnyeyeGlasses,PaperGlasses,PaperCut}/` — 13 attack types.
//!
//! Records: attack `print` (Paper), `replay`, `makeup:cosmetic`, `makeup:impersonation`,
//! `makeup:obfuscation`, `mask:half`, `mask:mannequin`, `mask:paper`, `mask:silicone`,
//! `mask:transparent`, `partial:funnyeye`, `partial:paperglasses`, `partial:papercut`, one
//! string per type so that a leave-one-attack-type-out protocol selects by `attack`.
//! Video = `siwm/{folders}/{stem}`.
//!
//! What SiW-M leaves open:
//! - Split: there is no official train/dev/test split of the attacks; the protocol is
//!   leave-one-attack-type-out, decided when training. Attack videos are therefore all
//!   imported as train. Live videos follow their `Live/Train` / `Live/Test` folder (the
//!   protocol's live split); videos directly in `Live/` are imported as train.
//! - Subject: the file names (`Live_12.mov`, `Mask_Half_3.mov`, …) number the videos of a
//!   type, not the people, so the subject is `unknown`.
//! - Device: not encoded in the names, so `unknown`.
//!
//! Folder names must match exactly (case included); other media files are unknown.

use std::path::Path;

use fas_core::dataset::{Split, ATTACK_NONE};

use super::{check_root, collect, is_dir, stem_with_ext, walk};
use super::{ImportError, ImportReport, Importer, Record, Verdict};

/// The SiW-M importer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SiwM;

/// Folder path (without the file) → attack type.
const ATTACK_FOLDERS: [(&[&str], &str); 13] = [
    (&["Paper"], "print"),
    (&["Replay"], "replay"),
    (&["Makeup", "Cosmetic"], "makeup:cosmetic"),
    (&["Makeup", "Impersonation"], "makeup:impersonation"),
    (&["Makeup", "Obfuscation"], "makeup:obfuscation"),
    (&["Mask", "HalfMask"], "mask:half"),
    (&["Mask", "MannequinHead"], "mask:mannequin"),
    (&["Mask", "PaperMask"], "mask:paper"),
    (&["Mask", "SiliconeMask"], "mask:silicone"),
    (&["Mask", "TransparentMask"], "mask:transparent"),
    (&["Partial", "FunnyeyeGlasses"], "partial:funnyeye"),
    (&["Partial", "PaperGlasses"], "partial:paperglasses"),
    (&["Partial", "PaperCut"], "partial:papercut"),
];

const UNKNOWN: &str = "unknown";

impl Importer for SiwM {
    fn name(&self) -> &'static str {
        "siwm"
    }

    fn recognises(&self, root: &Path) -> bool {
        is_dir(root, "Live")
            && ["Makeup", "Mask", "Paper", "Partial", "Replay"]
                .iter()
                .any(|d| is_dir(root, d))
    }

    fn expected_layout(&self) -> &'static str {
        "Live/ and the attack folders Makeup/, Mask/, Paper/, Partial/, Replay/"
    }

    fn import(&self, root: &Path) -> Result<ImportReport, ImportError> {
        check_root(self, root)?;
        Ok(collect(self.name(), walk(root)?, |parts, _| {
            classify(parts)
        }))
    }
}

fn classify(parts: &[&str]) -> Verdict {
    let Some((file, folders)) = parts.split_last() else {
        return Verdict::Unknown;
    };
    let Some(stem) = stem_with_ext(file, &["mov", "mp4"]) else {
        return Verdict::Unknown;
    };
    let (attack, split) = match folders {
        ["Live", "Train"] | ["Live"] => (ATTACK_NONE, Split::Train),
        ["Live", "Test"] => (ATTACK_NONE, Split::Test),
        _ => match ATTACK_FOLDERS.iter().find(|(f, _)| *f == folders) {
            Some(&(_, attack)) => (attack, Split::Train),
            None => return Verdict::Unknown,
        },
    };
    Verdict::Sample(Record {
        attack: attack.into(),
        subject: UNKNOWN.into(),
        device: UNKNOWN.into(),
        split,
        video: format!("siwm/{}/{stem}", folders.join("/")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_types_are_distinct() {
        let mut a: Vec<&str> = ATTACK_FOLDERS.iter().map(|(_, a)| *a).collect();
        a.sort();
        a.dedup();
        assert_eq!(a.len(), 13);
    }

    #[test]
    fn folders_map_to_records() {
        let Verdict::Sample(r) = classify(&["Mask", "SiliconeMask", "Mask_Silicone_3.mov"]) else {
            panic!("not imported");
        };
        assert_eq!(r.attack, "mask:silicone");
        assert_eq!(r.split, Split::Train);
        assert_eq!(r.video, "siwm/Mask/SiliconeMask/Mask_Silicone_3");
        let Verdict::Sample(r) = classify(&["Live", "Test", "Live_700.mov"]) else {
            panic!("not imported");
        };
        assert_eq!((r.attack.as_str(), r.split), ("none", Split::Test));
    }

    #[test]
    fn other_folders_are_unknown() {
        for parts in [
            &["Mask", "Silicone", "a.mov"][..],
            &["mask", "SiliconeMask", "a.mov"],
            &["Mask", "a.mov"],
            &["Live", "Dev", "a.mov"],
            &["Paper", "x", "a.mov"],
            &["a.mov"],
            &["Paper", "a.avi"],
        ] {
            assert!(matches!(classify(parts), Verdict::Unknown), "{parts:?}");
        }
    }
}
