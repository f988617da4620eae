//! Size-based rotation of the audit log, without breaking the chain.
//!
//! A door runs for years on an SD card; one ever-growing file is not an option. When the
//! current file (`audit.jsonl`) would grow past [`Rotation::max_bytes`], it is renamed to
//! `audit.jsonl.1` (`.1` → `.2`, …, the oldest beyond [`Rotation::keep`] deleted) and a new
//! current file is started. The chain does **not** restart: the new file's first record
//! carries the hash of the last line of `audit.jsonl.1` and the next `seq`, so the kept
//! files, oldest first, are one chain ([`verify_log`]). Only the oldest kept file is checked
//! from wherever it starts (its predecessors were deleted on purpose); every other link,
//! including those across files, is checked as in a single file.
//!
//! Crash safety: the renames run oldest first, so at any moment the files that exist,
//! sorted by suffix number (highest = oldest), are in chain order — a gap in the numbers
//! (a crash between two renames) is harmless, and a missing current file (a crash right
//! after `audit.jsonl` → `.1`) just means the next record starts the new current file.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{verify_chain_from, AuditError, ChainSummary, Start, GENESIS_HASH};

/// When to rotate, and how many old files to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before a record would make the current file larger than this.
    pub max_bytes: u64,
    /// Rotated files kept (`path.1` … `path.keep`); older ones are deleted.
    pub keep: u32,
}

/// The smallest `max_bytes`: one record is a few hundred bytes.
pub const MIN_ROTATE_BYTES: u64 = 4096;
/// The largest `keep` (file names stay short, verification bounded).
pub const MAX_KEEP: u32 = 999;

impl Rotation {
    pub fn validate(&self) -> Result<(), AuditError> {
        if self.max_bytes < MIN_ROTATE_BYTES {
            return Err(AuditError::InvalidRotation {
                field: "max_bytes",
                problem: format!(
                    "{} is below {MIN_ROTATE_BYTES} bytes (a file would hold only a few records); use e.g. 67108864 (64 MiB)",
                    self.max_bytes
                ),
            });
        }
        if self.keep == 0 || self.keep > MAX_KEEP {
            return Err(AuditError::InvalidRotation {
                field: "keep",
                problem: format!(
                    "{} is not in 1..={MAX_KEEP} (rotated files to keep)",
                    self.keep
                ),
            });
        }
        Ok(())
    }
}

/// `path.n`.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The rotated files of `path` that exist, oldest first (highest suffix first).
pub fn rotated_files(path: &Path) -> Result<Vec<(u32, PathBuf)>, AuditError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(AuditError::Io {
                file: dir.display().to_string(),
                action: "list",
                source,
            })
        }
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(n) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix('.'))
            .filter(|d| {
                !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
            })
            .and_then(|d| d.parse::<u32>().ok())
        else {
            continue;
        };
        out.push((n, dir.join(&file_name)));
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(out)
}

/// What [`verify_log`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSummary {
    /// The chain over all kept files (`records` counts all of them; `first_seq` > 0 when
    /// older files were rotated away).
    pub summary: ChainSummary,
    /// The files checked, oldest first.
    pub files: Vec<PathBuf>,
}

/// Verifies a log and its rotated files (`path.N` … `path.1`, then `path`) as one chain.
/// Neither existing is an empty log. An error names the file and its line.
pub fn verify_log(path: impl AsRef<Path>) -> Result<LogSummary, AuditError> {
    let path = path.as_ref();
    let mut files: Vec<PathBuf> = rotated_files(path)?.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    let mut summary: Option<ChainSummary> = None;
    for f in &files {
        let start = match &summary {
            None if files.len() > 1 || f != path => Start::Anywhere,
            None => Start::Genesis,
            Some(s) => Start::After(s.clone()),
        };
        let file = File::open(f).map_err(|source| AuditError::Io {
            file: f.display().to_string(),
            action: "open",
            source,
        })?;
        let s =
            verify_chain_from(io::BufReader::new(file), start).map_err(|e| AuditError::InFile {
                file: f.display().to_string(),
                error: Box::new(e),
            })?;
        summary = Some(match summary {
            None => s,
            Some(prev) => ChainSummary {
                records: prev.records + s.records,
                first_seq: prev.first_seq,
                head: s.head,
                next_seq: s.next_seq,
            },
        });
    }
    Ok(LogSummary {
        summary: summary.unwrap_or(ChainSummary {
            records: 0,
            first_seq: 0,
            head: GENESIS_HASH.into(),
            next_seq: 0,
        }),
        files,
    })
}

/// Rotates now: syncs `current` (the open file at `path`), shifts `path.k` → `path.k+1`
/// (deleting what would pass `keep`), renames `path` → `path.1`, syncs the directory and
/// returns the new, empty current file.
pub fn rotate(path: &Path, current: &File, keep: u32) -> Result<File, AuditError> {
    let io_err = |file: &Path, action: &'static str| {
        let file = file.display().to_string();
        move |source| AuditError::Io {
            file,
            action,
            source,
        }
    };
    current.sync_all().map_err(io_err(path, "fsync"))?;
    for (n, p) in rotated_files(path)? {
        if n >= keep {
            std::fs::remove_file(&p).map_err(io_err(&p, "remove the oldest rotated log"))?;
        } else {
            let to = rotated_path(path, n + 1);
            std::fs::rename(&p, &to).map_err(io_err(&p, "rename"))?;
        }
    }
    std::fs::rename(path, rotated_path(path, 1)).map_err(io_err(path, "rename"))?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(path, "create"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    crate::atomic::sync_dir(dir).map_err(io_err(dir, "sync the directory of"))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, AuditWriter, FsyncPolicy};
    use crate::decision::{Reason, Verdict};

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fas-rotate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn event(i: u64) -> AuditEvent {
        AuditEvent {
            time_ms: 1_000 + i,
            verdict: Verdict::from_reason(if i.is_multiple_of(3) {
                Reason::AboveThreshold
            } else {
                Reason::BelowThreshold
            }),
            scores: vec![0.25, 0.5],
            aggregate: Some(0.375),
            threshold: 0.5,
            frames_used: 2,
            model_sha256: "ab".repeat(32),
            captured_ms: None,
            lockout_until_ms: None,
            access: None,
        }
    }

    const ROT: Rotation = Rotation {
        max_bytes: 4096,
        keep: 3,
    };

    fn write(path: &Path, n: u64) {
        let mut w = AuditWriter::open_with(path, FsyncPolicy::Never, Some(ROT)).unwrap();
        for _ in 0..n {
            let i = w.next_seq();
            w.append(&event(i)).unwrap();
        }
    }

    #[test]
    fn rotation_keeps_one_chain_across_files_and_deletes_the_oldest() {
        let d = scratch("chain");
        let p = d.join("audit.jsonl");
        write(&p, 40);
        // Reopening continues the same chain (seq and hash from the kept files).
        write(&p, 40);
        let files = rotated_files(&p).unwrap();
        assert_eq!(
            files.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![3, 2, 1],
            "keep = 3 rotated files"
        );
        for f in files.iter().map(|f| &f.1).chain([&p]) {
            let len = std::fs::metadata(f).unwrap().len();
            assert!(
                len > 0 && len <= ROT.max_bytes,
                "{}: {len} bytes",
                f.display()
            );
        }
        let log = verify_log(&p).unwrap();
        assert_eq!(log.files.len(), 4);
        assert_eq!(log.summary.next_seq, 80);
        // The oldest files were deleted: the kept chain starts later, and counts what it holds.
        assert!(log.summary.first_seq > 0);
        assert_eq!(log.summary.records, 80 - log.summary.first_seq);
        // The current file alone does not start at genesis.
        assert!(crate::audit::verify_file(&p).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_edit_or_a_removed_line_in_any_kept_file_is_found_and_named() {
        let d = scratch("edit");
        let p = d.join("audit.jsonl");
        write(&p, 60);
        let middle = rotated_path(&p, 2);
        let text = std::fs::read_to_string(&middle).unwrap();
        // Remove the last line of .2: the first line of .1 no longer links to it.
        let mut lines: Vec<&str> = text.lines().collect();
        lines.pop();
        std::fs::write(&middle, lines.join("\n") + "\n").unwrap();
        let e = verify_log(&p).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("audit.jsonl.1"), "{msg}");
        assert_eq!(e.line(), Some(1));
        // Restore, then edit a score inside .1.
        std::fs::write(&middle, &text).unwrap();
        verify_log(&p).unwrap();
        let one = rotated_path(&p, 1);
        let t1 = std::fs::read_to_string(&one).unwrap();
        std::fs::write(&one, t1.replacen("0.25", "0.95", 1)).unwrap();
        let msg = verify_log(&p).unwrap_err().to_string();
        assert!(
            msg.contains("audit.jsonl.1") && msg.contains("line 2"),
            "{msg}"
        );
        // A broken kept file also stops the writer from appending.
        assert!(AuditWriter::open_with(&p, FsyncPolicy::Never, Some(ROT)).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_crash_between_renames_leaves_a_verifiable_log_that_continues() {
        let d = scratch("crash");
        let p = d.join("audit.jsonl");
        write(&p, 30);
        // Crash right after `audit.jsonl` → `.1`, before the new file was created…
        let last = rotated_files(&p).unwrap()[0].0;
        for (n, f) in rotated_files(&p).unwrap() {
            std::fs::rename(&f, rotated_path(&p, n + 1)).unwrap();
        }
        std::fs::rename(&p, rotated_path(&p, 1)).unwrap();
        // …and a gap in the numbers (a crash between two shifts).
        std::fs::rename(rotated_path(&p, last + 1), rotated_path(&p, last + 5)).unwrap();
        let before = verify_log(&p).unwrap();
        assert!(!p.exists());
        write(&p, 10);
        let after = verify_log(&p).unwrap();
        assert_eq!(after.summary.next_seq, before.summary.next_seq + 10);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_rotation_settings_are_refused_naming_the_field() {
        let e = Rotation {
            max_bytes: 100,
            keep: 2,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("max_bytes"), "{e}");
        let e = Rotation {
            max_bytes: 1 << 20,
            keep: 0,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("keep"), "{e}");
    }

    #[test]
    fn only_numbered_siblings_count_as_rotated_files() {
        let d = scratch("names");
        let p = d.join("audit.jsonl");
        for n in [
            "audit.jsonl.1",
            "audit.jsonl.12",
            "audit.jsonl.tmp",
            "audit.jsonl.01",
            "audit.jsonl.",
            "other.jsonl.2",
        ] {
            std::fs::write(d.join(n), "").unwrap();
        }
        let got: Vec<u32> = rotated_files(&p)
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(got, vec![12, 1]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
