//! MSU-MFSD (Wen, Han, Jain, "Face spoof detection with image distortion analysis",
//! IEEE TIFS 2015).
//!
//! Layout: `scene01/real/real_client{NNN}_{camera}_{quality}_scene01.{mp4,mov}` (live) and
//! `scene01/attack/attack_client{NNN}_{camera}_{quality}_{medium}_scene01.{mp4,mov}` with
//! camera `android` (phone, `.mp4`) or `laptop` (webcam, `.mov`), quality `SD` (or `HD`), and
//! medium `ipad_video`, `iphone_video` (video replay) or `printed_photo`. The `.face` files
//! next to the videos are not media and only counted. The official split is given by client
//! numbers in `train_sub_list.txt` and `test_sub_list.txt` at the root (numbers separated by
//! white space; `02` and `002` are the same client).
//!
//! Records: attack `none`, `replay:ipad`, `replay:iphone`, `print`; subject = the client
//! number as written in the file name (`"002"`); device = `{camera}-{quality}` in lower case
//! (`android-sd`); split train or test (MSU-MFSD has no dev split; protocols take dev out of
//! train); video = `msu/{stem}`.
//!
//! Both lists are required. A client in both lists is an error; a video whose client is in
//! neither list is ignored with that reason.

use std::collections::BTreeMap;
use std::path::Path;

use fas_core::dataset::{Split, ATTACK_NONE};

use super::{check_root, collect, digits, is_dir, stem_with_ext, walk};
use super::{ImportError, ImportReport, Importer, Record, Verdict};

/// The MSU-MFSD importer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Msu;

const TRAIN_LIST: &str = "train_sub_list.txt";
const TEST_LIST: &str = "test_sub_list.txt";

impl Importer for Msu {
    fn name(&self) -> &'static str {
        "msu"
    }

    fn recognises(&self, root: &Path) -> bool {
        is_dir(root, "scene01") || root.join(TRAIN_LIST).is_file() || root.join(TEST_LIST).is_file()
    }

    fn expected_layout(&self) -> &'static str {
        "scene01/real/, scene01/attack/, train_sub_list.txt and test_sub_list.txt"
    }

    fn import(&self, root: &Path) -> Result<ImportReport, ImportError> {
        check_root(self, root)?;
        let train = read_list(root, TRAIN_LIST)?;
        let test = read_list(root, TEST_LIST)?;
        if let Some((c, line)) = test.iter().find(|(c, _)| train.contains_key(c)) {
            return Err(ImportError::List {
                file: root.join(TEST_LIST).display().to_string(),
                line: *line,
                problem: format!(
                    "client {c} is also in {TRAIN_LIST} (line {})",
                    train[c]
                ),
                fix: "a client belongs to one split: restore the lists from the MSU-MFSD distribution",
            });
        }
        let split_of = |client: u32| {
            if train.contains_key(&client) {
                Some(Split::Train)
            } else if test.contains_key(&client) {
                Some(Split::Test)
            } else {
                None
            }
        };
        Ok(collect(self.name(), walk(root)?, |parts, _| {
            classify(parts, split_of)
        }))
    }
}

/// The client numbers of one subject list, each with the 1-based line it is on.
fn read_list(root: &Path, name: &'static str) -> Result<BTreeMap<u32, usize>, ImportError> {
    let path = root.join(name);
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImportError::MissingFile {
                dataset: "msu",
                file,
                what: "the official train/test client lists (train_sub_list.txt, test_sub_list.txt) at the dataset root",
                fix: "copy them from the MSU-MFSD distribution into the root",
            })
        }
        Err(source) => {
            return Err(ImportError::Io {
                path: file,
                action: "read",
                source,
            })
        }
    };
    let mut clients = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        for token in line.split_whitespace() {
            let n = (token.len() <= 3 && token.bytes().all(|b| b.is_ascii_digit()))
                .then(|| token.parse::<u32>().ok())
                .flatten()
                .filter(|&n| n > 0);
            let Some(n) = n else {
                return Err(ImportError::List {
                    file,
                    line: i + 1,
                    problem: format!("{token:?} is not a client number (1–999)"),
                    fix: "the list holds client numbers only: restore it from the MSU-MFSD distribution",
                });
            };
            clients.entry(n).or_insert(i + 1);
        }
    }
    if clients.is_empty() {
        return Err(ImportError::List {
            file,
            line: 1,
            problem: "no client numbers".into(),
            fix: "restore the list from the MSU-MFSD distribution",
        });
    }
    Ok(clients)
}

fn classify(parts: &[&str], split_of: impl Fn(u32) -> Option<Split>) -> Verdict {
    let ["scene01", kind @ ("real" | "attack"), file] = parts else {
        return Verdict::Unknown;
    };
    let Some(stem) = stem_with_ext(file, &["mp4", "mov"]) else {
        return Verdict::Unknown;
    };
    let t: Vec<&str> = stem.split('_').collect();
    let (c, camera, quality, attack) = match (*kind, &t[..]) {
        ("real", ["real", c, camera, quality, "scene01"]) => (c, camera, quality, ATTACK_NONE),
        ("attack", ["attack", c, camera, quality, medium, content, "scene01"]) => {
            let attack = match (*medium, *content) {
                ("ipad", "video") => "replay:ipad",
                ("iphone", "video") => "replay:iphone",
                ("printed", "photo") => "print",
                _ => return Verdict::Unknown,
            };
            (c, camera, quality, attack)
        }
        _ => return Verdict::Unknown,
    };
    let Some(number) = c.strip_prefix("client").and_then(|n| digits(n, 3)) else {
        return Verdict::Unknown;
    };
    if !matches!(*camera, "android" | "laptop") || !matches!(*quality, "SD" | "HD") {
        return Verdict::Unknown;
    }
    let subject = &c["client".len()..];
    let Some(split) = split_of(number) else {
        return Verdict::Ignored(format!(
            "client {subject} is in neither {TRAIN_LIST} nor {TEST_LIST}"
        ));
    };
    Verdict::Sample(Record {
        attack: attack.into(),
        subject: subject.into(),
        device: format!("{camera}-{}", quality.to_ascii_lowercase()),
        split,
        video: format!("msu/{stem}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(n: u32) -> Option<Split> {
        match n {
            1..=9 => Some(Split::Train),
            10..=19 => Some(Split::Test),
            _ => None,
        }
    }

    #[test]
    fn names_map_to_records() {
        let Verdict::Sample(r) = classify(
            &[
                "scene01",
                "attack",
                "attack_client012_laptop_SD_printed_photo_scene01.mov",
            ],
            split,
        ) else {
            panic!("not imported");
        };
        assert_eq!(r.attack, "print");
        assert_eq!(r.subject, "012");
        assert_eq!(r.device, "laptop-sd");
        assert_eq!(r.split, Split::Test);
        assert_eq!(
            r.video,
            "msu/attack_client012_laptop_SD_printed_photo_scene01"
        );
    }

    #[test]
    fn malformed_names_are_unknown_and_unlisted_clients_ignored() {
        for file in [
            "attack_client012_laptop_SD_ipad_photo_scene01.mov",
            "attack_client012_tablet_SD_ipad_video_scene01.mov",
            "attack_client12_laptop_SD_ipad_video_scene01.mov",
            "attack_client012_laptop_SD_ipad_video_scene02.mov",
            "attack_client012_laptop_SD_ipad_video_scene01.avi",
            "real_client012_laptop_SD_scene01.mov",
        ] {
            assert!(
                matches!(
                    classify(&["scene01", "attack", file], split),
                    Verdict::Unknown
                ),
                "{file}"
            );
        }
        assert!(matches!(
            classify(
                &["scene01", "real", "real_client099_android_SD_scene01.mp4"],
                split
            ),
            Verdict::Ignored(_)
        ));
    }
}
