//! The dataset manifest (`manifest.jsonl`, ARCHITECTURE.md contract 5): one face sample a line.

use serde::{Deserialize, Serialize};

/// Version written in every record; readers refuse records from a newer version.
pub const DATASET_MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Live,
    Spoof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Dev,
    Test,
}

/// One face sample. `path` is relative to the manifest's directory unless absolute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub v: u32,
    pub path: String,
    pub label: Label,
    /// `"none"` for bona fide; e.g. `"print"`, `"replay"`, `"mask"` for attacks.
    pub attack: String,
    /// Source dataset = domain (e.g. `"oulu"`, `"synth-a"`).
    pub domain: String,
    pub subject: String,
    pub device: String,
    pub split: Split,
    /// Video this frame belongs to (video-level metrics average over it).
    pub video: String,
    pub frame: u32,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Live => "live",
            Label::Spoof => "spoof",
        }
    }
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

/// The attack type of every bona fide sample.
pub const ATTACK_NONE: &str = "none";

/// The fields of a manifest line, in the order they are written.
pub const SAMPLE_FIELDS: [&str; 10] = [
    "v", "path", "label", "attack", "domain", "subject", "device", "split", "video", "frame",
];

/// A problem with one manifest line (or one file as a whole).
/// Every message names the file, the 1-based line, the field and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}: cannot {action} it — check the path and its permissions")]
    Io {
        file: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: not a JSON object ({msg}) — each line must be one JSON object; re-run the importer")]
    Json {
        file: String,
        line: usize,
        msg: String,
    },
    #[error("{file}:{line}: unknown field \"{field}\" — remove it, or upgrade fas if a newer version wrote it")]
    UnknownField {
        file: String,
        line: usize,
        field: String,
    },
    #[error("{file}:{line}: field \"v\": version {found} is newer than this fas reads (up to {supported}) — written by a newer fas; upgrade")]
    FutureVersion {
        file: String,
        line: usize,
        found: u64,
        supported: u32,
    },
    #[error("{file}:{line}: field \"{field}\": {problem} — {fix}")]
    Field {
        file: String,
        line: usize,
        field: &'static str,
        problem: String,
        fix: &'static str,
    },
}

impl ManifestError {
    /// 1-based line number, if the error concerns one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            ManifestError::Io { .. } => None,
            ManifestError::Json { line, .. }
            | ManifestError::UnknownField { line, .. }
            | ManifestError::FutureVersion { line, .. }
            | ManifestError::Field { line, .. } => Some(*line),
        }
    }
}

/// A field-level problem before the file name and line are attached.
struct FieldProblem {
    field: &'static str,
    problem: String,
    fix: &'static str,
}

const FIX_IMPORTER: &str = "fix the line or re-run the importer";

impl Sample {
    /// Check the invariants the type system does not: non-empty identifiers, a known version,
    /// and that live samples have attack `"none"` while spoof samples do not.
    pub fn validate(&self) -> Result<(), ManifestError> {
        self.check().map_err(|p| p.at("<sample>", 0))
    }

    fn check(&self) -> Result<(), FieldProblem> {
        if self.v == 0 {
            return Err(FieldProblem {
                field: "v",
                problem: "version 0 does not exist".into(),
                fix: FIX_IMPORTER,
            });
        }
        for (field, value) in [
            ("path", &self.path),
            ("attack", &self.attack),
            ("domain", &self.domain),
            ("subject", &self.subject),
            ("device", &self.device),
            ("video", &self.video),
        ] {
            if value.trim().is_empty() {
                return Err(FieldProblem {
                    field,
                    problem: "is empty".into(),
                    fix: "every field needs a value (use \"unknown\" where the dataset has none); re-run the importer",
                });
            }
        }
        match self.label {
            Label::Live if self.attack != ATTACK_NONE => Err(FieldProblem {
                field: "attack",
                problem: format!(
                    "label is \"live\" but attack is {:?}; a bona fide sample has attack \"none\"",
                    self.attack
                ),
                fix: "set attack to \"none\" or the label to \"spoof\"",
            }),
            Label::Spoof if self.attack == ATTACK_NONE => Err(FieldProblem {
                field: "attack",
                problem: "label is \"spoof\" but attack is \"none\"".into(),
                fix: "name the attack type (e.g. \"print\", \"replay\", \"mask\") or set the label to \"live\"",
            }),
            _ => Ok(()),
        }
    }

    /// Parse and validate one manifest line. `file` and `line` (1-based) only label errors.
    pub fn parse_line(text: &str, file: &str, line: usize) -> Result<Sample, ManifestError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ManifestError::Json {
                file: file.into(),
                line,
                msg: e.to_string(),
            })?;
        let obj = value.as_object().ok_or_else(|| ManifestError::Json {
            file: file.into(),
            line,
            msg: "found a JSON value that is not an object".into(),
        })?;
        let at = |p: FieldProblem| p.at(file, line);
        // Version first: a newer writer may have added fields we would call unknown.
        let v = match obj.get("v") {
            None => return Err(at(missing("v"))),
            Some(v) => v.as_u64().ok_or_else(|| {
                at(FieldProblem {
                    field: "v",
                    problem: format!("expected a positive integer, got {v}"),
                    fix: FIX_IMPORTER,
                })
            })?,
        };
        if v > u64::from(DATASET_MANIFEST_VERSION) {
            return Err(ManifestError::FutureVersion {
                file: file.into(),
                line,
                found: v,
                supported: DATASET_MANIFEST_VERSION,
            });
        }
        if let Some(k) = obj.keys().find(|k| !SAMPLE_FIELDS.contains(&k.as_str())) {
            return Err(ManifestError::UnknownField {
                file: file.into(),
                line,
                field: k.clone(),
            });
        }
        let string = |field: &'static str| -> Result<String, ManifestError> {
            match obj.get(field) {
                None => Err(at(missing(field))),
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(at(FieldProblem {
                    field,
                    problem: format!("expected a string, got {other}"),
                    fix: FIX_IMPORTER,
                })),
            }
        };
        let label = match string("label")?.as_str() {
            "live" => Label::Live,
            "spoof" => Label::Spoof,
            other => {
                return Err(at(FieldProblem {
                    field: "label",
                    problem: format!("expected \"live\" or \"spoof\", got {other:?}"),
                    fix: "fix the label or re-run the importer",
                }))
            }
        };
        let split = match string("split")?.as_str() {
            "train" => Split::Train,
            "dev" => Split::Dev,
            "test" => Split::Test,
            other => {
                return Err(at(FieldProblem {
                    field: "split",
                    problem: format!("expected \"train\", \"dev\" or \"test\", got {other:?}"),
                    fix: "fix the split or re-run the importer",
                }))
            }
        };
        let frame = match obj.get("frame") {
            None => return Err(at(missing("frame"))),
            Some(f) => f
                .as_u64()
                .and_then(|f| u32::try_from(f).ok())
                .ok_or_else(|| {
                    at(FieldProblem {
                        field: "frame",
                        problem: format!("expected a frame index 0..=4294967295, got {f}"),
                        fix: FIX_IMPORTER,
                    })
                })?,
        };
        let sample = Sample {
            v: v as u32,
            path: string("path")?,
            label,
            attack: string("attack")?,
            domain: string("domain")?,
            subject: string("subject")?,
            device: string("device")?,
            split,
            video: string("video")?,
            frame,
        };
        sample.check().map_err(at)?;
        Ok(sample)
    }

    /// The manifest line for this sample (no trailing newline), fields in canonical order.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a Sample always serialises")
    }
}

fn missing(field: &'static str) -> FieldProblem {
    FieldProblem {
        field,
        problem: "is missing".into(),
        fix: FIX_IMPORTER,
    }
}

impl FieldProblem {
    fn at(self, file: &str, line: usize) -> ManifestError {
        ManifestError::Field {
            file: file.into(),
            line,
            field: self.field,
            problem: self.problem,
            fix: self.fix,
        }
    }
}

/// Which samples a query selects; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub split: Option<Split>,
    pub domain: Option<String>,
    pub attack: Option<String>,
    pub label: Option<Label>,
}

impl Query {
    pub fn matches(&self, s: &Sample) -> bool {
        self.split.is_none_or(|x| s.split == x)
            && self.label.is_none_or(|x| s.label == x)
            && self.domain.as_deref().is_none_or(|x| s.domain == x)
            && self.attack.as_deref().is_none_or(|x| s.attack == x)
    }
}

/// A whole `manifest.jsonl`, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    pub samples: Vec<Sample>,
}

impl Manifest {
    pub fn new(samples: Vec<Sample>) -> Self {
        Manifest { samples }
    }

    /// Read and validate a manifest file; the first bad line fails the load.
    /// Blank lines are skipped.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|source| ManifestError::Io {
            file: file.clone(),
            action: "open",
            source,
        })?;
        Self::from_reader(std::io::BufReader::new(f), &file)
    }

    /// Parse a manifest from any reader; `file` labels errors.
    pub fn from_reader(
        reader: impl std::io::BufRead,
        file: &str,
    ) -> Result<Manifest, ManifestError> {
        let mut samples = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|source| ManifestError::Io {
                file: file.into(),
                action: "read",
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            samples.push(Sample::parse_line(&line, file, i + 1)?);
        }
        Ok(Manifest { samples })
    }

    /// The file content: one line per sample, each ending in `\n`.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for s in &self.samples {
            out.push_str(&s.to_line());
            out.push('\n');
        }
        out
    }

    /// Validate every sample, then write the file atomically (see [`crate::atomic`]).
    /// Error line numbers are the lines the samples would have had.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<(), ManifestError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        for (i, s) in self.samples.iter().enumerate() {
            if s.v > DATASET_MANIFEST_VERSION {
                return Err(ManifestError::FutureVersion {
                    file,
                    line: i + 1,
                    found: s.v.into(),
                    supported: DATASET_MANIFEST_VERSION,
                });
            }
            s.check().map_err(|p| p.at(&file, i + 1))?;
        }
        crate::atomic::write_atomic(path, self.to_jsonl().as_bytes()).map_err(|source| {
            ManifestError::Io {
                file,
                action: "write",
                source,
            }
        })
    }

    /// Distinct domains, sorted.
    pub fn domains(&self) -> Vec<&str> {
        distinct(self.samples.iter().map(|s| s.domain.as_str()))
    }

    /// Distinct subjects, sorted.
    pub fn subjects(&self) -> Vec<&str> {
        distinct(self.samples.iter().map(|s| s.subject.as_str()))
    }

    /// Distinct attack types (including `"none"`), sorted.
    pub fn attacks(&self) -> Vec<&str> {
        distinct(self.samples.iter().map(|s| s.attack.as_str()))
    }

    /// The samples a query selects, in file order.
    pub fn select(&self, q: &Query) -> Vec<&Sample> {
        self.samples.iter().filter(|s| q.matches(s)).collect()
    }

    pub fn by_split(&self, split: Split) -> Vec<&Sample> {
        self.select(&Query {
            split: Some(split),
            ..Query::default()
        })
    }

    pub fn by_domain(&self, domain: &str) -> Vec<&Sample> {
        self.select(&Query {
            domain: Some(domain.into()),
            ..Query::default()
        })
    }

    pub fn by_attack(&self, attack: &str) -> Vec<&Sample> {
        self.select(&Query {
            attack: Some(attack.into()),
            ..Query::default()
        })
    }

    /// Samples grouped by video, keyed by `(domain, video)` (video ids are only unique
    /// within a dataset); each group sorted by frame index.
    pub fn group_by_video(&self) -> std::collections::BTreeMap<(&str, &str), Vec<&Sample>> {
        let mut groups: std::collections::BTreeMap<(&str, &str), Vec<&Sample>> = Default::default();
        for s in &self.samples {
            groups
                .entry((s.domain.as_str(), s.video.as_str()))
                .or_default()
                .push(s);
        }
        for g in groups.values_mut() {
            g.sort_by_key(|s| s.frame);
        }
        groups
    }
}

fn distinct<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let set: std::collections::BTreeSet<&str> = it.collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(label: Label, attack: &str, domain: &str, video: &str, frame: u32) -> Sample {
        Sample {
            v: DATASET_MANIFEST_VERSION,
            path: format!("{domain}/{video}/{frame}.png"),
            label,
            attack: attack.into(),
            domain: domain.into(),
            subject: format!("s-{video}"),
            device: "phone1".into(),
            split: Split::Train,
            video: video.into(),
            frame,
        }
    }

    const GOOD: &str = r#"{"v":1,"path":"a.png","label":"live","attack":"none","domain":"oulu","subject":"1","device":"d","split":"train","video":"v1","frame":0}"#;

    fn err_of(lines: &[&str]) -> String {
        let text = lines.join("\n");
        Manifest::from_reader(text.as_bytes(), "manifest.jsonl")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_good_line() {
        let m = Manifest::from_reader(GOOD.as_bytes(), "manifest.jsonl").unwrap();
        assert_eq!(m.samples.len(), 1);
        assert_eq!(m.samples[0].to_line(), GOOD);
    }

    #[test]
    fn bad_label_names_file_line_field_and_fix() {
        let bad = GOOD.replace("\"live\"", "\"real\"");
        let e = err_of(&[GOOD, GOOD, &bad]);
        assert_eq!(
            e,
            "manifest.jsonl:3: field \"label\": expected \"live\" or \"spoof\", got \"real\" — fix the label or re-run the importer"
        );
    }

    #[test]
    fn rejects_unknown_field() {
        let bad = GOOD.replace("\"frame\":0", "\"frame\":0,\"colour\":1");
        let e = err_of(&[&bad]);
        assert!(
            e.starts_with("manifest.jsonl:1: unknown field \"colour\""),
            "{e}"
        );
    }

    #[test]
    fn rejects_future_version() {
        let bad = GOOD
            .replace("\"v\":1", "\"v\":2")
            .replace("\"frame\":0", "\"frame\":0,\"new\":1");
        let e = err_of(&[GOOD, &bad]);
        assert!(e.starts_with("manifest.jsonl:2: field \"v\""), "{e}");
        assert!(e.contains("newer fas; upgrade"), "{e}");
    }

    #[test]
    fn rejects_empty_path_missing_field_and_bad_json() {
        let e = err_of(&[&GOOD.replace("\"a.png\"", "\"\"")]);
        assert!(
            e.starts_with("manifest.jsonl:1: field \"path\": is empty"),
            "{e}"
        );
        let e = err_of(&[&GOOD.replace("\"device\":\"d\",", "")]);
        assert!(
            e.starts_with("manifest.jsonl:1: field \"device\": is missing"),
            "{e}"
        );
        let e = err_of(&[GOOD, "{not json"]);
        assert!(e.starts_with("manifest.jsonl:2: not a JSON object"), "{e}");
        let e = err_of(&[&GOOD.replace("\"frame\":0", "\"frame\":-3")]);
        assert!(e.starts_with("manifest.jsonl:1: field \"frame\""), "{e}");
        let e = err_of(&[&GOOD.replace("\"train\"", "\"val\"")]);
        assert!(e.starts_with("manifest.jsonl:1: field \"split\""), "{e}");
    }

    #[test]
    fn rejects_label_attack_mismatch() {
        let e = err_of(&[&GOOD.replace("\"none\"", "\"print\"")]);
        assert!(
            e.starts_with("manifest.jsonl:1: field \"attack\": label is \"live\""),
            "{e}"
        );
        let e = err_of(&[&GOOD.replace("\"live\"", "\"spoof\"")]);
        assert!(
            e.starts_with("manifest.jsonl:1: field \"attack\": label is \"spoof\""),
            "{e}"
        );
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let bad = GOOD.replace("\"oulu\"", "\"\"");
        let e = err_of(&[GOOD, "", &bad]);
        assert!(e.starts_with("manifest.jsonl:3: field \"domain\""), "{e}");
    }

    #[test]
    fn save_load_and_queries() {
        let d = crate::atomic::tempdir("manifest");
        let p = d.join("manifest.jsonl");
        let mut m = Manifest::new(vec![
            sample(Label::Live, "none", "oulu", "v2", 3),
            sample(Label::Spoof, "print", "oulu", "v2", 1),
            sample(Label::Spoof, "replay", "casia", "v1", 0),
        ]);
        m.samples[2].split = Split::Test;
        m.save(&p).unwrap();
        let back = Manifest::load(&p).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.domains(), ["casia", "oulu"]);
        assert_eq!(m.subjects(), ["s-v1", "s-v2"]);
        assert_eq!(m.attacks(), ["none", "print", "replay"]);
        assert_eq!(m.by_split(Split::Test).len(), 1);
        assert_eq!(m.by_domain("oulu").len(), 2);
        assert_eq!(m.by_attack("print").len(), 1);
        let q = Query {
            label: Some(Label::Spoof),
            split: Some(Split::Train),
            ..Query::default()
        };
        assert_eq!(m.select(&q).len(), 1);
        let g = m.group_by_video();
        assert_eq!(g.len(), 2);
        let frames: Vec<u32> = g[&("oulu", "v2")].iter().map(|s| s.frame).collect();
        assert_eq!(frames, [1, 3]);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn save_refuses_invalid_sample_and_keeps_file() {
        let d = crate::atomic::tempdir("manifest-bad");
        let p = d.join("manifest.jsonl");
        let good = Manifest::new(vec![sample(Label::Live, "none", "oulu", "v", 0)]);
        good.save(&p).unwrap();
        let bad = Manifest::new(vec![
            sample(Label::Live, "none", "oulu", "v", 0),
            sample(Label::Live, "print", "oulu", "v", 1),
        ]);
        let e = bad.save(&p).unwrap_err().to_string();
        assert!(e.contains("manifest.jsonl:2: field \"attack\""), "{e}");
        assert_eq!(Manifest::load(&p).unwrap(), good);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn load_missing_file_names_it() {
        let e = Manifest::load("/nonexistent/manifest.jsonl")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/nonexistent/manifest.jsonl: cannot open"),
            "{e}"
        );
    }

    fn arb_sample() -> impl Strategy<Value = Sample> {
        let id = "[a-zA-Z0-9_./ -]{0,12}[a-z0-9]";
        (
            id,
            prop::bool::ANY,
            "[a-z]{1,8}",
            id,
            id,
            id,
            prop::sample::select(vec![Split::Train, Split::Dev, Split::Test]),
            id,
            any::<u32>(),
        )
            .prop_map(
                |(path, live, attack, domain, subject, device, split, video, frame)| {
                    let (label, attack) = if live {
                        (Label::Live, ATTACK_NONE.to_string())
                    } else {
                        (Label::Spoof, format!("x{attack}"))
                    };
                    Sample {
                        v: DATASET_MANIFEST_VERSION,
                        path,
                        label,
                        attack,
                        domain,
                        subject,
                        device,
                        split,
                        video,
                        frame,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn jsonl_round_trip(samples in prop::collection::vec(arb_sample(), 0..20)) {
            let m = Manifest::new(samples);
            let text = m.to_jsonl();
            let back = Manifest::from_reader(text.as_bytes(), "manifest.jsonl").unwrap();
            prop_assert_eq!(back, m);
        }
    }
}
