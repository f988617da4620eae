//! Dataset importers: a public face anti-spoofing dataset's own directory layout and file
//! naming, turned into dataset-manifest records (ARCHITECTURE.md contract 5).
//!
//! An imported [`Sample`] describes a *source media file* (a video, or for CelebA-Spoof an
//! image), not yet a face crop: `path` is the file relative to the dataset root, `frame` is 0,
//! `video` is an id unique within the dataset, `domain` is the importer's [`Importer::name`].
//! `fas-train prepare` later decodes the media and writes the crop manifests; protocols
//! filter on domain, attack and split.
//!
//! Attack types are `kind[:subtype]`, kind one of `print`, `replay`, `mask`, `makeup`,
//! `partial`; bona fide samples have [`ATTACK_NONE`]. Each importer's module documentation
//! gives its layout, the mapping from names to records, and where the dataset leaves a field
//! open.
//!
//! Nothing is guessed. A media file (by extension) that does not follow the dataset's
//! convention is listed in [`ImportReport::unknown`]; a file that follows it but is left out on
//! purpose (enrolment videos, a subject in no official split, a label that contradicts its
//! folder) is listed in [`ImportReport::ignored`] with the reason. Everything else (annotation
//! files, lists, hidden files) is only counted. Directories are walked with `std` only, in
//! sorted order, and the report is sorted, so the same tree always gives the same report.

mod casia;
mod celeba;
mod msu;
mod oulu;
mod replay;
mod siwm;

pub use casia::Casia;
pub use celeba::CelebaSpoof;
pub use msu::Msu;
pub use oulu::Oulu;
pub use replay::ReplayAttack;
pub use siwm::SiwM;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use fas_core::dataset::{Label, Manifest, Sample, Split, ATTACK_NONE, DATASET_MANIFEST_VERSION};

/// The datasets [`importer`] knows, by their short name (= the records' `domain`).
pub const DATASETS: &[&str] = &["oulu", "casia", "replay", "msu", "siwm", "celeba"];

/// One dataset's layout reader.
///
/// # Contract
/// - [`Importer::import`] reads only; it never writes under `root`.
/// - Every returned sample passes [`Sample::validate`], has `domain == self.name()`,
///   `frame == 0`, a `path` relative to `root` with `/` separators, and a `video` id unique
///   in the report.
/// - The report is sorted (samples by path, unknown and ignored by path), so the same tree
///   always gives the same report.
/// - A root that does not exist, is not a directory, or lacks the dataset's top-level
///   layout is an error, never an empty report.
pub trait Importer {
    /// Short dataset name; also the `domain` of every record.
    fn name(&self) -> &'static str;
    /// Whether `root` has this dataset's top-level layout. Looks at a few names only.
    fn recognises(&self, root: &Path) -> bool;
    /// What the dataset root must contain, in words (used in error messages).
    fn expected_layout(&self) -> &'static str;
    /// Read the dataset under `root` into records.
    fn import(&self, root: &Path) -> Result<ImportReport, ImportError>;
}

/// What an import found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// One record per source media file, sorted by path.
    pub samples: Vec<Sample>,
    /// Media-looking files (by extension) that match no convention of the dataset, relative
    /// to the root: reported, never guessed. Sorted.
    pub unknown: Vec<PathBuf>,
    /// Files that follow the convention but are left out on purpose, relative to the root,
    /// with the reason. Sorted by path.
    pub ignored: Vec<(PathBuf, String)>,
    /// Files that are not media (annotations, lists, read-mes, hidden files): counted only.
    pub other_files: usize,
}

impl ImportReport {
    /// The samples as a manifest (ready for [`Manifest::save`]).
    pub fn manifest(&self) -> Manifest {
        Manifest::new(self.samples.clone())
    }

    /// Counts per split, label and attack, and of the files not imported; one item a line.
    pub fn summary(&self) -> String {
        let count = |f: &dyn Fn(&Sample) -> bool| self.samples.iter().filter(|s| f(s)).count();
        let live = count(&|s| s.label == Label::Live);
        let mut out = format!(
            "samples: {} (live {live}, spoof {})\n",
            self.samples.len(),
            self.samples.len() - live
        );
        for split in [Split::Train, Split::Dev, Split::Test] {
            let n = count(&|s| s.split == split);
            let l = count(&|s| s.split == split && s.label == Label::Live);
            out.push_str(&format!(
                "split {}: {n} (live {l}, spoof {})\n",
                split.as_str(),
                n - l
            ));
        }
        let mut attacks: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &self.samples {
            *attacks.entry(s.attack.as_str()).or_default() += 1;
        }
        for (attack, n) in attacks {
            out.push_str(&format!("attack {attack}: {n}\n"));
        }
        out.push_str(&format!(
            "unknown: {} (media files matching no convention; not imported)\n",
            self.unknown.len()
        ));
        out.push_str(&format!(
            "ignored: {} (left out on purpose; see the reasons)\n",
            self.ignored.len()
        ));
        out.push_str(&format!("other files: {} (not media)\n", self.other_files));
        out
    }
}

/// Why an import failed. Every message names the path and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{root}: does not exist — pass the {dataset} dataset root, the directory that holds {expected}")]
    MissingRoot {
        dataset: &'static str,
        root: String,
        expected: &'static str,
    },
    #[error("{root}: not a directory — pass the {dataset} dataset root, the directory that holds {expected}")]
    NotADirectory {
        dataset: &'static str,
        root: String,
        expected: &'static str,
    },
    #[error("{root}: looks like the {found} dataset, not {dataset} — import it with the {found} importer, or pass the {dataset} root (the directory that holds {expected})")]
    WrongDataset {
        dataset: &'static str,
        found: &'static str,
        root: String,
        expected: &'static str,
    },
    #[error("{root}: not a {dataset} dataset root — it should hold {expected}{hint}")]
    Layout {
        dataset: &'static str,
        root: String,
        expected: &'static str,
        /// `"; <dir> does: pass that"` when a subdirectory has the layout, else empty.
        hint: String,
    },
    #[error("{file}: missing — {dataset} needs {what}; {fix}")]
    MissingFile {
        dataset: &'static str,
        file: String,
        what: &'static str,
        fix: &'static str,
    },
    #[error("{file}:{line}:{column}: {msg} — {fix}")]
    Json {
        file: String,
        line: usize,
        column: usize,
        msg: String,
        fix: &'static str,
    },
    #[error("{file}:{line}: {problem} — {fix}")]
    List {
        file: String,
        line: usize,
        problem: String,
        fix: &'static str,
    },
    #[error("{path}: cannot {action} it — check the path and its permissions")]
    Io {
        path: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The importer for a dataset name (case-insensitive; the long names such as `oulu-npu`,
/// `casia-fasd`, `replay-attack`, `msu-mfsd`, `siw-m`, `celeba-spoof` work too).
pub fn importer(name: &str) -> Option<Box<dyn Importer>> {
    let name = name.to_ascii_lowercase().replace('_', "-");
    Some(match name.as_str() {
        "oulu" | "oulu-npu" => Box::new(Oulu),
        "casia" | "casia-fasd" | "casia-mfsd" => Box::new(Casia),
        "replay" | "replay-attack" | "replayattack" | "idiap" => Box::new(ReplayAttack),
        "msu" | "msu-mfsd" => Box::new(Msu),
        "siwm" | "siw-m" => Box::new(SiwM),
        "celeba" | "celeba-spoof" | "celebaspoof" => Box::new(CelebaSpoof),
        _ => return None,
    })
}

/// The datasets whose top-level layout `root` has, in [`DATASETS`] order.
pub fn detect(root: &Path) -> Vec<&'static str> {
    DATASETS
        .iter()
        .filter_map(|n| importer(n))
        .filter(|i| i.recognises(root))
        .map(|i| i.name())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Shared machinery for the importers.

/// Check that `root` is a directory with `imp`'s layout; otherwise say what it looks like.
pub(crate) fn check_root(imp: &dyn Importer, root: &Path) -> Result<(), ImportError> {
    let dataset = imp.name();
    let expected = imp.expected_layout();
    let shown = root.display().to_string();
    match fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImportError::MissingRoot {
                dataset,
                root: shown,
                expected,
            })
        }
        Err(source) => {
            return Err(ImportError::Io {
                path: shown,
                action: "read",
                source,
            })
        }
        Ok(m) if !m.is_dir() => {
            return Err(ImportError::NotADirectory {
                dataset,
                root: shown,
                expected,
            })
        }
        Ok(_) => {}
    }
    if imp.recognises(root) {
        return Ok(());
    }
    if let Some(found) = detect(root).into_iter().find(|&n| n != dataset) {
        return Err(ImportError::WrongDataset {
            dataset,
            found,
            root: shown,
            expected,
        });
    }
    let mut hint = String::new();
    let mut children: Vec<PathBuf> = fs::read_dir(root)
        .map_err(|source| ImportError::Io {
            path: shown.clone(),
            action: "list",
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    if let Some(child) = children.iter().find(|c| imp.recognises(c)) {
        hint = format!("; {} does: pass that as the root", child.display());
    }
    Err(ImportError::Layout {
        dataset,
        root: shown,
        expected,
        hint,
    })
}

/// `root/name` is a directory (symbolic links followed).
pub(crate) fn is_dir(root: &Path, name: &str) -> bool {
    root.join(name).is_dir()
}

/// A file found under a dataset root.
pub(crate) struct FileEntry {
    /// Relative to the root.
    rel: PathBuf,
    /// A symbolic link whose target does not exist.
    broken: bool,
}

/// Every file under `root`, relative to it, sorted by path. Symbolic links are followed
/// (each directory is visited once, so link cycles end); hidden directories are skipped.
pub(crate) fn walk(root: &Path) -> Result<Vec<FileEntry>, ImportError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    walk_dir(root, Path::new(""), &mut out, &mut seen)?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk_dir(
    root: &Path,
    rel: &Path,
    out: &mut Vec<FileEntry>,
    seen: &mut HashSet<PathBuf>,
) -> Result<(), ImportError> {
    let dir = root.join(rel);
    let io = |action: &'static str| {
        let path = dir.display().to_string();
        move |source| ImportError::Io {
            path,
            action,
            source,
        }
    };
    if !seen.insert(fs::canonicalize(&dir).map_err(io("resolve"))?) {
        return Ok(());
    }
    let mut entries = fs::read_dir(&dir)
        .map_err(io("list"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io("list"))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let child = rel.join(&name);
        let hidden = name.to_string_lossy().starts_with('.');
        match fs::metadata(e.path()) {
            Ok(m) if m.is_dir() => {
                if !hidden {
                    walk_dir(root, &child, out, seen)?;
                }
            }
            Ok(_) => out.push(FileEntry::new(child, false)),
            // Dangling symbolic link: still a name worth reporting.
            Err(_) if fs::symlink_metadata(e.path()).is_ok() => {
                out.push(FileEntry::new(child, true))
            }
            Err(source) => {
                return Err(ImportError::Io {
                    path: e.path().display().to_string(),
                    action: "read",
                    source,
                })
            }
        }
    }
    Ok(())
}

impl FileEntry {
    fn new(rel: PathBuf, broken: bool) -> Self {
        FileEntry { rel, broken }
    }

    /// The path's components when they are all UTF-8.
    fn parts(&self) -> Option<Vec<&str>> {
        self.rel
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect()
    }
}

const VIDEO_EXTS: &[&str] = &[
    "avi", "mov", "mp4", "m4v", "mkv", "webm", "wmv", "flv", "mpg", "mpeg", "3gp", "mts",
];
const IMAGE_EXTS: &[&str] = &["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];

/// Whether a file name has a video or image extension (any case).
pub(crate) fn is_media(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && VIDEO_EXTS
                .iter()
                .chain(IMAGE_EXTS)
                .any(|e| ext.eq_ignore_ascii_case(e))
    })
}

/// The stem of `file` when its extension is one of `exts` (any case).
pub(crate) fn stem_with_ext<'a>(file: &'a str, exts: &[&str]) -> Option<&'a str> {
    let (stem, ext) = file.rsplit_once('.')?;
    (!stem.is_empty() && exts.iter().any(|e| ext.eq_ignore_ascii_case(e))).then_some(stem)
}

/// `s` as a number when it is exactly `width` ASCII digits.
pub(crate) fn digits(s: &str, width: usize) -> Option<u32> {
    (s.len() == width && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The fields of one record that the dataset's naming decides.
pub(crate) struct Record {
    pub attack: String,
    pub subject: String,
    pub device: String,
    pub split: Split,
    pub video: String,
}

impl Record {
    fn into_sample(self, domain: &str, path: String) -> Sample {
        let label = if self.attack == ATTACK_NONE {
            Label::Live
        } else {
            Label::Spoof
        };
        Sample {
            v: DATASET_MANIFEST_VERSION,
            path,
            label,
            attack: self.attack,
            domain: domain.into(),
            subject: self.subject,
            device: self.device,
            split: self.split,
            video: self.video,
            frame: 0,
        }
    }
}

/// What an importer makes of one media file.
pub(crate) enum Verdict {
    Sample(Record),
    Unknown,
    Ignored(String),
}

/// Run `classify` over every media file of `files` and assemble the sorted report.
/// `classify` gets the path components and the `/`-joined relative path.
pub(crate) fn collect(
    domain: &str,
    files: Vec<FileEntry>,
    mut classify: impl FnMut(&[&str], &str) -> Verdict,
) -> ImportReport {
    let mut report = ImportReport::default();
    for f in files {
        let name = f.rel.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') || !is_media(&name) {
            report.other_files += 1;
            continue;
        }
        if f.broken {
            report.ignored.push((
                f.rel,
                "broken symbolic link: its target does not exist".into(),
            ));
            continue;
        }
        let Some(parts) = f.parts() else {
            report.unknown.push(f.rel.clone());
            continue;
        };
        let path = parts.join("/");
        match classify(&parts, &path) {
            Verdict::Sample(r) => report.samples.push(r.into_sample(domain, path)),
            Verdict::Unknown => report.unknown.push(f.rel),
            Verdict::Ignored(why) => report.ignored.push((f.rel, why)),
        }
    }
    finish(report)
}

/// Sort everything and move samples whose video id is not unique to `ignored`.
pub(crate) fn finish(mut report: ImportReport) -> ImportReport {
    report.samples.sort_by(|a, b| a.path.cmp(&b.path));
    let mut by_video: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &report.samples {
        by_video.entry(&s.video).or_default().push(&s.path);
    }
    let clashes: BTreeMap<String, Vec<String>> = by_video
        .into_iter()
        .filter(|(_, paths)| paths.len() > 1)
        .map(|(v, paths)| (v.to_owned(), paths.iter().map(|p| p.to_string()).collect()))
        .collect();
    if !clashes.is_empty() {
        let (keep, clash): (Vec<Sample>, Vec<Sample>) = std::mem::take(&mut report.samples)
            .into_iter()
            .partition(|s| !clashes.contains_key(&s.video));
        report.samples = keep;
        for s in clash {
            let others: Vec<&str> = clashes[&s.video]
                .iter()
                .map(String::as_str)
                .filter(|p| *p != s.path)
                .collect();
            report.ignored.push((
                PathBuf::from(&s.path),
                format!(
                    "same video id {:?} as {}: keep one copy (remove or rename the other)",
                    s.video,
                    others.join(", ")
                ),
            ));
        }
    }
    report.unknown.sort();
    report.ignored.sort_by(|a, b| a.0.cmp(&b.0));
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_extensions_any_case() {
        assert!(is_media("a.avi"));
        assert!(is_media("a.MOV"));
        assert!(is_media("x.y.Jpg"));
        assert!(!is_media("a.txt"));
        assert!(!is_media("a_BB.txt"));
        assert!(!is_media(".avi"));
        assert!(!is_media("avi"));
    }

    #[test]
    fn digits_need_exact_width() {
        assert_eq!(digits("007", 3), Some(7));
        assert_eq!(digits("07", 3), None);
        assert_eq!(digits("0a7", 3), None);
        assert_eq!(digits("+07", 3), None);
    }

    #[test]
    fn stem_needs_listed_extension() {
        assert_eq!(stem_with_ext("1_1_01_1.avi", &["avi"]), Some("1_1_01_1"));
        assert_eq!(stem_with_ext("1_1_01_1.AVI", &["avi"]), Some("1_1_01_1"));
        assert_eq!(stem_with_ext("1_1_01_1.mp4", &["avi"]), None);
        assert_eq!(stem_with_ext(".avi", &["avi"]), None);
    }

    #[test]
    fn every_dataset_name_resolves_to_itself() {
        for &n in DATASETS {
            assert_eq!(importer(n).unwrap().name(), n);
        }
        assert_eq!(importer("OULU-NPU").unwrap().name(), "oulu");
        assert_eq!(importer("Replay_Attack").unwrap().name(), "replay");
        assert!(importer("siw").is_none());
    }
}
