//! CelebA-Spoof (Zhang et al., "CelebA-Spoof: Large-scale face anti-spoofing dataset with rich
//! annotations", ECCV 2020).
//!
//! Layout: `Data/{train,test}/{subject}/{live,spoof}/{name}.{jpg,png}`, each image with a
//! `{name}_BB.txt` face box (not media, only counted), and the labels in
//! `metas/intra_test/train_label.json` and `metas/intra_test/test_label.json`: one JSON
//! object mapping `"Data/{split}/…/{name}.{ext}"` to 44 integers — 0–39 the CelebA face
//! attributes, 40 the spoof type, 41 the illumination, 42 the environment, 43 live (0) or
//! spoof (1). Spoof type: 0 live, 1 photo, 2 poster, 3 A4, 4 face mask, 5 upper-body mask,
//! 6 region mask (4–6 are paper cut-outs), 7 PC, 8 pad, 9 phone (screens), 10 3D mask.
//! Illumination: 1 normal, 2 strong, 3 back, 4 dark; environment: 1 indoor, 2 outdoor
//! (0 for live images). These indices follow the dataset's README.
//!
//! Records (one per image): attack `none`, `print:photo`, `print:poster`, `print:a4`,
//! `mask:paper-face`, `mask:paper-upper-body`, `partial:paper-region`, `replay:pc`,
//! `replay:pad`, `replay:phone`, `mask:3d`; subject = the subject folder; split train or test
//! (the intra-dataset protocol has no dev split); video = `celeba/{split}/{subject}/{live|spoof}/{name}`
//! (an image is its own one-frame "video"). Device: the capture sensors are not annotated, so
//! spoof images get `{environment}-{illumination}` (`indoor-normal`) and live images, which
//! are CelebA's web photos, get `web`.
//!
//! The label file of a split is required when `Data/{split}/` exists. An image missing from
//! its label file, or whose label contradicts its `live`/`spoof` folder, is ignored with the
//! reason; so is a label entry whose image is not on disk. Malformed JSON (or an entry that is
//! not 44 integers) is an error naming the line.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use fas_core::dataset::{Split, ATTACK_NONE};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{check_root, collect, finish, is_dir, stem_with_ext, walk};
use super::{ImportError, ImportReport, Importer, Record, Verdict};

/// The CelebA-Spoof importer.
#[derive(Debug, Clone, Copy, Default)]
pub struct CelebaSpoof;

/// Split folder under `Data/`, its split, and its label file relative to the root.
const SPLITS: [(&str, Split, &str); 2] = [
    ("train", Split::Train, "metas/intra_test/train_label.json"),
    ("test", Split::Test, "metas/intra_test/test_label.json"),
];
const ATTRIBUTES: usize = 44;
const LABEL_FIX: &str =
    "the label file is damaged: restore metas/intra_test/ from the CelebA-Spoof distribution";

impl Importer for CelebaSpoof {
    fn name(&self) -> &'static str {
        "celeba"
    }

    fn recognises(&self, root: &Path) -> bool {
        let data = root.join("Data");
        is_dir(&data, "train") || is_dir(&data, "test") || is_dir(root, "metas/intra_test")
    }

    fn expected_layout(&self) -> &'static str {
        "Data/{train,test}/{subject}/{live,spoof}/ images and metas/intra_test/{train,test}_label.json"
    }

    fn import(&self, root: &Path) -> Result<ImportReport, ImportError> {
        check_root(self, root)?;
        let mut labels: HashMap<String, (Attrs, &'static str)> = HashMap::new();
        for (dir, _, label_file) in SPLITS {
            if is_dir(&root.join("Data"), dir) {
                for (key, attrs) in read_labels(root, label_file)? {
                    labels.insert(key, (attrs, label_file));
                }
            }
        }
        let mut report = collect(self.name(), walk(root)?, |parts, path| {
            classify(parts, labels.remove(path).map(|(a, _)| a))
        });
        let mut missing: Vec<(String, &str)> = labels
            .into_iter()
            .map(|(key, (_, file))| (key, file))
            .collect();
        missing.sort();
        for (key, file) in missing {
            report.ignored.push((
                PathBuf::from(key),
                format!("listed in {file} but not found on disk"),
            ));
        }
        Ok(finish(report))
    }
}

/// The label attributes an import uses.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Attrs {
    spoof_type: i64,
    illumination: i64,
    environment: i64,
    spoof: i64,
}

fn read_labels(root: &Path, rel: &str) -> Result<HashMap<String, Attrs>, ImportError> {
    let path = root.join(rel);
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImportError::MissingFile {
                dataset: "celeba",
                file,
                what: "the intra-dataset label file of every split present under Data/",
                fix: "restore metas/intra_test/ from the CelebA-Spoof distribution",
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
    let mut de = serde_json::Deserializer::from_str(&text);
    let parsed =
        de::Deserializer::deserialize_map(&mut de, LabelsVisitor).and_then(|m| de.end().map(|_| m));
    parsed.map_err(|e| {
        let position = format!(" at line {} column {}", e.line(), e.column());
        let msg = e.to_string();
        ImportError::Json {
            file,
            line: e.line(),
            column: e.column(),
            msg: msg.strip_suffix(&position).unwrap_or(&msg).to_owned(),
            fix: LABEL_FIX,
        }
    })
}

/// Reads the whole label object, keeping only the four attributes used (a full file holds
/// over half a million entries of 44 numbers).
struct LabelsVisitor;

impl<'de> Visitor<'de> for LabelsVisitor {
    type Value = HashMap<String, Attrs>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "an object mapping image paths to lists of {ATTRIBUTES} integers"
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let attrs = map.next_value_seed(AttrsSeed { key: &key })?;
            out.insert(key, attrs);
        }
        Ok(out)
    }
}

struct AttrsSeed<'a> {
    key: &'a str,
}

impl<'de> DeserializeSeed<'de> for AttrsSeed<'_> {
    type Value = Attrs;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Attrs, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for AttrsSeed<'_> {
    type Value = Attrs;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a list of {ATTRIBUTES} integers for {:?}", self.key)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Attrs, A::Error> {
        let mut kept = [0i64; 4];
        let mut n = 0;
        while let Some(v) = seq.next_element::<serde_json::Value>()? {
            let Some(x) = v.as_i64() else {
                return Err(de::Error::custom(format!(
                    "{:?}: attribute {n} is {v}, expected an integer",
                    self.key
                )));
            };
            if (40..ATTRIBUTES).contains(&n) {
                kept[n - 40] = x;
            }
            n += 1;
        }
        if n != ATTRIBUTES {
            return Err(de::Error::custom(format!(
                "{:?}: {n} attributes, expected {ATTRIBUTES}",
                self.key
            )));
        }
        Ok(Attrs {
            spoof_type: kept[0],
            illumination: kept[1],
            environment: kept[2],
            spoof: kept[3],
        })
    }
}

fn spoof_attack(spoof_type: i64) -> Option<&'static str> {
    Some(match spoof_type {
        1 => "print:photo",
        2 => "print:poster",
        3 => "print:a4",
        4 => "mask:paper-face",
        5 => "mask:paper-upper-body",
        6 => "partial:paper-region",
        7 => "replay:pc",
        8 => "replay:pad",
        9 => "replay:phone",
        10 => "mask:3d",
        _ => return None,
    })
}

fn spoof_device(a: &Attrs) -> String {
    let environment = match a.environment {
        1 => "indoor",
        2 => "outdoor",
        _ => return "unknown".into(),
    };
    let illumination = match a.illumination {
        1 => "normal",
        2 => "strong",
        3 => "back",
        4 => "dark",
        _ => return "unknown".into(),
    };
    format!("{environment}-{illumination}")
}

fn classify(parts: &[&str], label: Option<Attrs>) -> Verdict {
    let ["Data", dir, subject, kind @ ("live" | "spoof"), file] = parts else {
        return Verdict::Unknown;
    };
    let Some(&(_, split, label_file)) = SPLITS.iter().find(|(d, _, _)| d == dir) else {
        return Verdict::Unknown;
    };
    let Some(stem) = stem_with_ext(file, &["jpg", "jpeg", "png"]) else {
        return Verdict::Unknown;
    };
    let Some(a) = label else {
        return Verdict::Ignored(format!("not in {label_file}: no label"));
    };
    let record = match (*kind, a.spoof) {
        ("live", 0) if a.spoof_type == 0 => Some((ATTACK_NONE, "web".to_owned())),
        ("spoof", 1) => spoof_attack(a.spoof_type).map(|t| (t, spoof_device(&a))),
        _ => None,
    };
    let Some((attack, device)) = record else {
        return Verdict::Ignored(format!(
            "{label_file} gives live/spoof {} and spoof type {}, which contradicts the {kind}/ folder",
            a.spoof, a.spoof_type
        ));
    };
    Verdict::Sample(Record {
        attack: attack.into(),
        subject: (*subject).into(),
        device,
        split,
        video: format!("celeba/{dir}/{subject}/{kind}/{stem}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(spoof_type: i64, illumination: i64, environment: i64, spoof: i64) -> Attrs {
        Attrs {
            spoof_type,
            illumination,
            environment,
            spoof,
        }
    }

    #[test]
    fn labels_map_to_records() {
        let parts = ["Data", "test", "6964", "spoof", "497050.png"];
        let Verdict::Sample(r) = classify(&parts, Some(attrs(9, 4, 2, 1))) else {
            panic!("not imported");
        };
        assert_eq!(r.attack, "replay:phone");
        assert_eq!(r.device, "outdoor-dark");
        assert_eq!(r.subject, "6964");
        assert_eq!(r.split, Split::Test);
        assert_eq!(r.video, "celeba/test/6964/spoof/497050");
    }

    #[test]
    fn contradicting_or_missing_labels_are_ignored() {
        let live = ["Data", "train", "1", "live", "000001.jpg"];
        for a in [attrs(1, 1, 1, 1), attrs(0, 0, 0, 1), attrs(3, 0, 0, 0)] {
            assert!(matches!(classify(&live, Some(a)), Verdict::Ignored(_)));
        }
        let spoof = ["Data", "train", "1", "spoof", "000002.jpg"];
        for a in [attrs(0, 0, 0, 0), attrs(11, 1, 1, 1), attrs(0, 1, 1, 1)] {
            assert!(matches!(classify(&spoof, Some(a)), Verdict::Ignored(_)));
        }
        assert!(matches!(classify(&spoof, None), Verdict::Ignored(_)));
    }

    #[test]
    fn label_json_keeps_the_four_attributes() {
        let mut v = vec![0; 44];
        v[40] = 7;
        v[41] = 2;
        v[42] = 1;
        v[43] = 1;
        let text = serde_json::json!({ "Data/train/1/spoof/2.png": v }).to_string();
        let mut de = serde_json::Deserializer::from_str(&text);
        let m = de::Deserializer::deserialize_map(&mut de, LabelsVisitor).unwrap();
        assert_eq!(m["Data/train/1/spoof/2.png"], attrs(7, 2, 1, 1));
    }
}
