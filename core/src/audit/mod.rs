//! The tamper-evident audit log (ARCHITECTURE.md contract 6): one JSON line per decision.
//!
//! Chain rule: every record's `prev_hash` is the lowercase sha256 hex of the exact bytes of
//! the previous line, **without** its trailing `\n`; the first record's `prev_hash` is
//! [`GENESIS_HASH`] (64 zeros) and `seq` counts up from 0 without gaps. Every line ends in
//! `\n`. [`verify_chain`] reports the first line where the chain breaks: an edited line is
//! caught at the next line (its hash no longer matches), a removed, duplicated or
//! reordered line by `seq`, a torn final write by the missing newline. An edit of the very
//! last line can only be caught against a head hash kept elsewhere — compare
//! [`ChainSummary::head`] with it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access::AccessRecord;
use crate::decision::{Decision, Reason, Verdict};

pub mod rotate;
pub use rotate::{verify_log, LogSummary, Rotation};

/// Version 2 added the access reasons and the `access` field; version 1 records still read.
pub const AUDIT_VERSION: u32 = 2;

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line of the audit log. Field order is the serialisation order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub v: u32,
    pub seq: u64,
    /// Wall-clock time of the decision, milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
    pub decision: Decision,
    pub reason: Reason,
    /// Per-frame `p_live` scores that fed the decision.
    pub scores: Vec<f32>,
    /// The aggregated score compared with the threshold; `None` when no frame was scored.
    pub aggregate: Option<f32>,
    pub threshold: f32,
    pub frames_used: u32,
    /// sha256 hex of the `liveness.onnx` that scored the frames.
    pub model_sha256: String,
    /// Wall-clock capture times (ms since the Unix epoch) of the session's first and last
    /// frame: when the face that was judged stood in front of the camera. Absent when the
    /// session saw no frame, and in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_ms: Option<[u64; 2]>,
    /// Wall-clock end (ms since the Unix epoch) of the door's lockout, on the decision that
    /// started it and on the requests it refused (`reason = "locked_out"`). Absent
    /// otherwise, and in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockout_until_ms: Option<u64>,
    /// The access mode, the person and each factor (format 2). Absent in records written
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessRecord>,
    pub prev_hash: String,
}

/// What the caller supplies; the writer adds `v`, `seq` and `prev_hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub time_ms: u64,
    pub verdict: Verdict,
    pub scores: Vec<f32>,
    pub aggregate: Option<f32>,
    pub threshold: f32,
    pub frames_used: u32,
    pub model_sha256: String,
    /// First and last frame's capture time, see [`AuditRecord::captured_ms`].
    pub captured_ms: Option<[u64; 2]>,
    /// See [`AuditRecord::lockout_until_ms`].
    pub lockout_until_ms: Option<u64>,
    /// See [`AuditRecord::access`].
    pub access: Option<AccessRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{file}: cannot {action} it — check the path, free space and permissions")]
    Io {
        file: String,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("audit log line {line}: final line has no newline — a write was cut short (crash or power loss); move the log aside and start a new one")]
    Truncated { line: u64 },
    #[error("audit log line {line}: not a valid audit record ({msg}) — the line was edited or corrupted")]
    Json { line: u64, msg: String },
    #[error("audit log line {line}: field \"v\": version {found} is newer than this fas reads (up to {supported}) — written by a newer fas; upgrade")]
    FutureVersion {
        line: u64,
        found: u32,
        supported: u32,
    },
    #[error("audit log line {line}: field \"seq\": expected {expected}, found {found} — {}", seq_hint(*expected, *found))]
    SeqMismatch {
        line: u64,
        expected: u64,
        found: u64,
    },
    #[error("audit log line {line}: field \"prev_hash\": {found} does not match {expected}, the sha256 of {} — {}", prev_desc(*line), link_hint(*line))]
    BrokenLink {
        line: u64,
        expected: String,
        found: String,
    },
    #[error("audit log line {line}: field \"decision\": {decision:?} does not follow from reason {reason:?} — the line was edited")]
    Inconsistent {
        line: u64,
        decision: Decision,
        reason: Reason,
    },
    #[error("{file}: {error}")]
    InFile {
        file: String,
        error: Box<AuditError>,
    },
    #[error("audit config: field \"{field}\": {problem}")]
    InvalidRotation {
        field: &'static str,
        problem: String,
    },
    #[error("audit event: field \"{field}\": {problem} — fix the caller")]
    InvalidEvent {
        field: &'static str,
        problem: String,
    },
}

fn seq_hint(expected: u64, found: u64) -> String {
    if found > expected {
        format!("{} line(s) before it were removed", found - expected)
    } else {
        "lines were reordered or duplicated".into()
    }
}

fn prev_desc(line: u64) -> String {
    if line <= 1 {
        "nothing (genesis)".into()
    } else {
        format!("line {}", line - 1)
    }
}

fn link_hint(line: u64) -> String {
    if line <= 1 {
        "the start of the log was removed".into()
    } else {
        format!(
            "line {} was edited, or lines were inserted or removed",
            line - 1
        )
    }
}

impl AuditError {
    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<u64> {
        match self {
            AuditError::Truncated { line }
            | AuditError::Json { line, .. }
            | AuditError::FutureVersion { line, .. }
            | AuditError::SeqMismatch { line, .. }
            | AuditError::BrokenLink { line, .. }
            | AuditError::Inconsistent { line, .. } => Some(*line),
            AuditError::InFile { error, .. } => error.line(),
            AuditError::Io { .. }
            | AuditError::InvalidEvent { .. }
            | AuditError::InvalidRotation { .. } => None,
        }
    }
}

/// sha256 hex of one line's bytes (a trailing `\n`, if given, is not hashed).
pub fn line_hash(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    hex::encode(Sha256::digest(line))
}

/// Result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    pub records: u64,
    /// `seq` of the first record checked (0 for a whole log; more for a rotated log whose
    /// oldest files were deleted).
    pub first_seq: u64,
    /// Hash of the last line (the next record's `prev_hash`); genesis for an empty log.
    pub head: String,
    pub next_seq: u64,
}

/// Where a verified piece of a log must start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A whole log: the first record has `seq` 0 and the genesis `prev_hash`.
    Genesis,
    /// Right after the given summary (the next file of a rotated log).
    After(ChainSummary),
    /// Wherever its first record says (the oldest file kept of a rotated log, whose
    /// predecessors were rotated away); a first record with `seq` 0 must still link to
    /// genesis.
    Anywhere,
}

/// Verify a whole log. Returns the first broken line as a typed error.
pub fn verify_chain(reader: impl BufRead) -> Result<ChainSummary, AuditError> {
    verify_chain_from(reader, Start::Genesis)
}

/// Verify a log, or a piece of one that starts at `start`.
pub fn verify_chain_from(
    mut reader: impl BufRead,
    start: Start,
) -> Result<ChainSummary, AuditError> {
    let (mut prev, mut next_seq, anywhere) = match start {
        Start::Genesis => (GENESIS_HASH.to_string(), 0u64, false),
        Start::After(s) => (s.head, s.next_seq, false),
        Start::Anywhere => (GENESIS_HASH.to_string(), 0u64, true),
    };
    let mut first_seq = next_seq;
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| AuditError::Io {
                file: "audit log".into(),
                action: "read",
                source,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            return Err(AuditError::Truncated { line: line_no });
        }
        let rec: AuditRecord =
            serde_json::from_slice(&buf[..buf.len() - 1]).map_err(|e| AuditError::Json {
                line: line_no,
                msg: e.to_string(),
            })?;
        if rec.v > AUDIT_VERSION {
            return Err(AuditError::FutureVersion {
                line: line_no,
                found: rec.v,
                supported: AUDIT_VERSION,
            });
        }
        if anywhere && line_no == 1 && rec.seq > 0 {
            // Anchor on the first record kept; only what follows it is checked.
            next_seq = rec.seq;
            first_seq = rec.seq;
            prev = rec.prev_hash.clone();
        }
        if rec.seq != next_seq {
            return Err(AuditError::SeqMismatch {
                line: line_no,
                expected: next_seq,
                found: rec.seq,
            });
        }
        if rec.prev_hash != prev {
            return Err(AuditError::BrokenLink {
                line: line_no,
                expected: prev,
                found: rec.prev_hash,
            });
        }
        if rec.reason.decision() != rec.decision {
            return Err(AuditError::Inconsistent {
                line: line_no,
                decision: rec.decision,
                reason: rec.reason,
            });
        }
        prev = line_hash(&buf);
        next_seq += 1;
    }
    Ok(ChainSummary {
        records: line_no,
        head: prev,
        next_seq,
        first_seq,
    })
}

/// Verify a log file; see [`verify_chain`].
pub fn verify_file(path: impl AsRef<Path>) -> Result<ChainSummary, AuditError> {
    let path = path.as_ref();
    let f = File::open(path).map_err(|source| AuditError::Io {
        file: path.display().to_string(),
        action: "open",
        source,
    })?;
    verify_chain(io::BufReader::new(f))
}

/// When the writer forces records to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// `fdatasync` after every record: a granted door is on disk before it opens.
    EveryRecord,
    /// Leave flushing to the OS (tests, SD cards with a UPS).
    Never,
}

/// Appends chained records to a log file.
#[derive(Debug)]
pub struct AuditWriter {
    file: File,
    path: PathBuf,
    policy: FsyncPolicy,
    head: String,
    next_seq: u64,
    rotation: Option<Rotation>,
    /// Bytes in the current file.
    size: u64,
    recovered_tail: Option<PathBuf>,
}

/// A power cut during an append leaves a last line without its newline. Left there, it
/// would stop every later start (the log no longer verifies) — a door that never comes back
/// after a power cut. Its bytes are moved to `<log>.torn.<unix ms>` (kept for the
/// investigator, mode 0600) and the log is cut back to its last whole line; a line that
/// ends in a newline is never touched (an edited line still fails verification).
fn recover_torn_tail(path: &Path) -> Result<Option<PathBuf>, AuditError> {
    let io_err = |action: &'static str| {
        move |source| AuditError::Io {
            file: path.display().to_string(),
            action,
            source,
        }
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read")(e)),
    };
    if bytes.last().is_none_or(|&b| b == b'\n') {
        return Ok(None);
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut side = path.as_os_str().to_owned();
    side.push(format!(".torn.{ms}"));
    let side = PathBuf::from(side);
    crate::atomic::write_atomic_private(&side, &bytes[keep..])
        .map_err(io_err("save the torn last line of"))?;
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("open"))?;
    f.set_len(keep as u64)
        .map_err(io_err("cut the torn last line from"))?;
    f.sync_all().map_err(io_err("sync"))?;
    Ok(Some(side))
}

impl AuditWriter {
    /// Open (or create) a log for appending. An existing log is verified first and the chain
    /// continues from its last line; a broken log is refused with the verification error.
    pub fn open(path: impl AsRef<Path>, policy: FsyncPolicy) -> Result<AuditWriter, AuditError> {
        Self::open_with(path, policy, None)
    }

    /// [`AuditWriter::open`] with size-based rotation ([`rotate`]): the whole kept set
    /// (`path.N` … `path.1`, `path`) is verified as one chain before the first append.
    pub fn open_with(
        path: impl AsRef<Path>,
        policy: FsyncPolicy,
        rotation: Option<Rotation>,
    ) -> Result<AuditWriter, AuditError> {
        let path = path.as_ref().to_path_buf();
        if let Some(r) = &rotation {
            r.validate()?;
        }
        let io_err = |action: &'static str| {
            let file = path.display().to_string();
            move |source| AuditError::Io {
                file,
                action,
                source,
            }
        };
        let recovered_tail = recover_torn_tail(&path)?;
        let existed = path.exists();
        let summary = if rotation.is_some() {
            rotate::verify_log(&path)?.summary
        } else if existed {
            verify_file(&path)?
        } else {
            ChainSummary {
                records: 0,
                first_seq: 0,
                head: GENESIS_HASH.into(),
                next_seq: 0,
            }
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err("open"))?;
        if !existed && policy == FsyncPolicy::EveryRecord {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            crate::atomic::sync_dir(dir).map_err(io_err("sync the directory of"))?;
        }
        let size = file.metadata().map_err(io_err("stat"))?.len();
        Ok(AuditWriter {
            file,
            path,
            policy,
            head: summary.head,
            next_seq: summary.next_seq,
            rotation,
            size,
            recovered_tail,
        })
    }

    /// Where [`AuditWriter::open`] moved a torn last line (a write cut short by a crash or
    /// a power cut), if it found one: the chain continues from the last whole record.
    pub fn recovered_tail(&self) -> Option<&Path> {
        self.recovered_tail.as_deref()
    }

    /// Hash of the last written line (genesis if none).
    pub fn head(&self) -> &str {
        &self.head
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Append one decision. Scores must be finite (record a failed inference with reason
    /// `InferenceError` and only the finite scores), `model_sha256` 64 hex digits.
    pub fn append(&mut self, event: &AuditEvent) -> Result<AuditRecord, AuditError> {
        let invalid = |field, problem: String| AuditError::InvalidEvent { field, problem };
        if !event.verdict.is_consistent() {
            return Err(invalid(
                "decision",
                format!(
                    "{:?} does not follow from reason {:?}",
                    event.verdict.decision, event.verdict.reason
                ),
            ));
        }
        if let Some(s) = event.scores.iter().find(|s| !s.is_finite()) {
            return Err(invalid("scores", format!("{s} is not finite")));
        }
        if event.aggregate.is_some_and(|a| !a.is_finite()) {
            return Err(invalid("aggregate", "is not finite".into()));
        }
        if !event.threshold.is_finite() {
            return Err(invalid("threshold", "is not finite".into()));
        }
        if let Some([first, last]) = event.captured_ms {
            if first > last {
                return Err(invalid(
                    "captured_ms",
                    format!("first frame {first} after last frame {last}"),
                ));
            }
        }
        if !is_sha256_hex(&event.model_sha256) {
            return Err(invalid(
                "model_sha256",
                format!("{:?} is not 64 lowercase hex digits", event.model_sha256),
            ));
        }
        let rec = AuditRecord {
            v: AUDIT_VERSION,
            seq: self.next_seq,
            time_ms: event.time_ms,
            decision: event.verdict.decision,
            reason: event.verdict.reason,
            scores: event.scores.clone(),
            aggregate: event.aggregate,
            threshold: event.threshold,
            frames_used: event.frames_used,
            model_sha256: event.model_sha256.clone(),
            captured_ms: event.captured_ms,
            lockout_until_ms: event.lockout_until_ms,
            access: event.access.clone(),
            prev_hash: self.head.clone(),
        };
        let mut line = serde_json::to_vec(&rec).expect("an audit record always serialises");
        let hash = line_hash(&line);
        line.push(b'\n');
        if let Some(r) = self.rotation {
            if self.size > 0 && self.size + line.len() as u64 > r.max_bytes {
                self.file = rotate::rotate(&self.path, &self.file, r.keep)?;
                self.size = 0;
            }
        }
        let file = self.path.display().to_string();
        let written = self
            .file
            .write_all(&line)
            .map_err(|source| ("append to", source))
            .and_then(|()| match self.policy {
                FsyncPolicy::EveryRecord => self.file.sync_data().map_err(|s| ("fsync", s)),
                FsyncPolicy::Never => Ok(()),
            });
        if let Err((action, source)) = written {
            // A record that is not whole on disk is not part of the chain: cut back what
            // was written (a full disk, a file-size limit), so the next append — once
            // there is room — continues a log that still verifies.
            let _ = self.file.set_len(self.size);
            return Err(AuditError::Io {
                file,
                action,
                source,
            });
        }
        self.head = hash;
        self.next_seq += 1;
        self.size += line.len() as u64;
        Ok(rec)
    }
}

/// True for 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(i: u64) -> AuditEvent {
        let reason = match i % 3 {
            0 => Reason::AboveThreshold,
            1 => Reason::BelowThreshold,
            _ => Reason::NoFace,
        };
        AuditEvent {
            time_ms: 1_700_000_000_000 + i,
            verdict: Verdict::from_reason(reason),
            scores: vec![0.25, 0.5 + i as f32 / 100.0],
            aggregate: if reason == Reason::NoFace {
                None
            } else {
                Some(0.6)
            },
            threshold: 0.5,
            frames_used: 2,
            model_sha256: "ab".repeat(32),
            captured_ms: i
                .is_multiple_of(2)
                .then_some([1_699_999_999_000 + i, 1_699_999_999_500 + i]),
            lockout_until_ms: None,
            access: i.is_multiple_of(3).then_some(AccessRecord {
                mode: crate::access::AccessMode::Presence,
                person: None,
                factors: crate::access::Factors {
                    credential: crate::access::FactorState::NotRequired,
                    live: crate::access::FactorState::Passed,
                    face: crate::access::FactorState::NotRequired,
                    face_similarity: None,
                },
            }),
        }
    }

    /// A 5-record log as lines (each with its newline).
    fn log5() -> Vec<Vec<u8>> {
        let d = crate::atomic::tempdir("audit5");
        let p = d.join("audit.jsonl");
        let mut w = AuditWriter::open(&p, FsyncPolicy::Never).unwrap();
        for i in 0..5 {
            w.append(&event(i)).unwrap();
        }
        let bytes = std::fs::read(&p).unwrap();
        std::fs::remove_dir_all(d).unwrap();
        bytes
            .split_inclusive(|&b| b == b'\n')
            .map(|l| l.to_vec())
            .collect()
    }

    fn verify(lines: &[Vec<u8>]) -> Result<ChainSummary, AuditError> {
        verify_chain(&lines.concat()[..])
    }

    #[test]
    fn intact_log_verifies_and_reopens() {
        let d = crate::atomic::tempdir("audit");
        let p = d.join("audit.jsonl");
        let mut w = AuditWriter::open(&p, FsyncPolicy::EveryRecord).unwrap();
        let r0 = w.append(&event(0)).unwrap();
        assert_eq!(r0.prev_hash, GENESIS_HASH);
        w.append(&event(1)).unwrap();
        let head = w.head().to_string();
        drop(w);
        let mut w = AuditWriter::open(&p, FsyncPolicy::Never).unwrap();
        assert_eq!(w.next_seq(), 2);
        let r2 = w.append(&event(2)).unwrap();
        assert_eq!(r2.prev_hash, head);
        let s = verify_file(&p).unwrap();
        assert_eq!(s.records, 3);
        assert_eq!(s.head, w.head());
        let text = std::fs::read_to_string(&p).unwrap();
        let first: AuditRecord = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first, r0);
        std::fs::remove_dir_all(d).unwrap();
    }

    /// A log written before format 2 (no `access`, `"v":1`) still verifies, and a writer
    /// continues its chain with format 2 records.
    #[test]
    fn version_1_logs_still_verify_and_continue() {
        let mut prev = GENESIS_HASH.to_string();
        let mut text = Vec::new();
        for i in 0..3u64 {
            let line = format!(
                r#"{{"v":1,"seq":{i},"time_ms":{t},"decision":"deny","reason":"below_threshold","scores":[0.1],"aggregate":0.1,"threshold":0.5,"frames_used":1,"model_sha256":"{m}","prev_hash":"{prev}"}}"#,
                t = 1_000 + i,
                m = "ab".repeat(32)
            );
            prev = line_hash(line.as_bytes());
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        assert_eq!(verify_chain(&text[..]).unwrap().records, 3);
        let d = crate::atomic::tempdir("audit-v1");
        let p = d.join("audit.jsonl");
        std::fs::write(&p, &text).unwrap();
        let mut w = AuditWriter::open(&p, FsyncPolicy::Never).unwrap();
        let r = w.append(&event(0)).unwrap();
        assert_eq!((r.v, r.seq, r.prev_hash.as_str()), (2, 3, prev.as_str()));
        assert!(r.access.is_some());
        assert_eq!(verify_file(&p).unwrap().records, 4);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn capture_times_are_optional_and_ordered() {
        let d = crate::atomic::tempdir("audit-captured");
        let p = d.join("audit.jsonl");
        let mut w = AuditWriter::open(&p, FsyncPolicy::Never).unwrap();
        // With times (event 0) and without (event 1): the field is left out, so a record
        // without it reads as one written before the field existed.
        let r0 = w.append(&event(0)).unwrap();
        assert_eq!(r0.captured_ms, Some([1_699_999_999_000, 1_699_999_999_500]));
        w.append(&event(1)).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("\"captured_ms\":[1699999999000,1699999999500]"));
        assert!(!lines[1].contains("captured_ms"), "{}", lines[1]);
        let r1: AuditRecord = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(r1.captured_ms, None);
        // Last frame before the first is refused, naming the field.
        let mut bad = event(2);
        bad.captured_ms = Some([10, 9]);
        let e = w.append(&bad).unwrap_err().to_string();
        assert!(e.contains("captured_ms"), "{e}");
        assert_eq!(
            verify_file(&p).unwrap().records,
            2,
            "nothing written for it"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn empty_log_is_genesis() {
        let s = verify_chain(&b""[..]).unwrap();
        assert_eq!(s.head, GENESIS_HASH);
        assert_eq!(s.next_seq, 0);
    }

    #[test]
    fn edited_line_is_caught_at_next_line() {
        let mut lines = log5();
        let edited = String::from_utf8(lines[1].clone())
            .unwrap()
            .replace("0.25", "0.95");
        lines[1] = edited.into_bytes();
        let e = verify(&lines).unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(matches!(e, AuditError::BrokenLink { .. }));
        let msg = e.to_string();
        assert!(msg.contains("line 3: field \"prev_hash\""), "{msg}");
        assert!(msg.contains("line 2 was edited"), "{msg}");
    }

    #[test]
    fn edited_decision_is_caught_on_its_line() {
        let mut lines = log5();
        // line 2 is below_threshold → deny; flip it to grant.
        let edited = String::from_utf8(lines[1].clone())
            .unwrap()
            .replace("\"deny\"", "\"grant\"");
        lines[1] = edited.into_bytes();
        let e = verify(&lines).unwrap_err();
        assert!(matches!(e, AuditError::Inconsistent { line: 2, .. }), "{e}");
    }

    #[test]
    fn removed_line_is_caught() {
        let mut lines = log5();
        lines.remove(2);
        let e = verify(&lines).unwrap_err();
        assert!(
            matches!(
                e,
                AuditError::SeqMismatch {
                    line: 3,
                    expected: 2,
                    found: 3
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("removed"), "{e}");
        let mut lines = log5();
        lines.remove(0);
        assert_eq!(verify(&lines).unwrap_err().line(), Some(1));
    }

    #[test]
    fn reordered_lines_are_caught() {
        let mut lines = log5();
        lines.swap(1, 2);
        let e = verify(&lines).unwrap_err();
        assert!(
            matches!(
                e,
                AuditError::SeqMismatch {
                    line: 2,
                    expected: 1,
                    found: 2
                }
            ),
            "{e}"
        );
        let mut lines = log5();
        lines.swap(3, 4);
        assert_eq!(verify(&lines).unwrap_err().line(), Some(4));
    }

    #[test]
    fn forged_seq_still_breaks_link() {
        // Remove a line and renumber the rest: the hash chain still breaks.
        let mut lines = log5();
        lines.remove(2);
        for (i, l) in lines.iter_mut().enumerate().skip(2) {
            let s = String::from_utf8(l.clone()).unwrap();
            *l = s
                .replace(&format!("\"seq\":{}", i + 1), &format!("\"seq\":{i}"))
                .into_bytes();
        }
        let e = verify(&lines).unwrap_err();
        assert!(matches!(e, AuditError::BrokenLink { line: 3, .. }), "{e}");
    }

    #[test]
    fn truncated_final_line_is_caught() {
        let mut lines = log5();
        let last = lines.last_mut().unwrap();
        last.truncate(last.len() / 2);
        let e = verify(&lines).unwrap_err();
        assert!(matches!(e, AuditError::Truncated { line: 5 }), "{e}");
        // Only the newline missing is still a torn write.
        let mut lines = log5();
        lines.last_mut().unwrap().pop();
        assert!(matches!(
            verify(&lines),
            Err(AuditError::Truncated { line: 5 })
        ));
        // The writer recovers a torn last line (a power cut during an append) instead of
        // refusing to start: its bytes are kept aside, the chain goes on from line 4.
        let d = crate::atomic::tempdir("audit-trunc");
        let p = d.join("audit.jsonl");
        let mut torn = log5();
        let half = torn[4].len() / 2;
        torn[4].truncate(half);
        std::fs::write(&p, torn.concat()).unwrap();
        let mut w = AuditWriter::open(&p, FsyncPolicy::Never).unwrap();
        assert_eq!(w.next_seq(), 4);
        let side = w.recovered_tail().unwrap().to_path_buf();
        assert_eq!(std::fs::read(&side).unwrap(), torn[4]);
        assert!(side
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("audit.jsonl.torn."));
        w.append(&event(4)).unwrap();
        drop(w);
        assert_eq!(verify_file(&p).unwrap().records, 5);
        // A whole line that was edited is not "torn": still refused.
        let mut edited = log5();
        edited[2] = String::from_utf8(edited[2].clone())
            .unwrap()
            .replace("\"frames_used\":2", "\"frames_used\":9")
            .into_bytes();
        std::fs::write(&p, edited.concat()).unwrap();
        let e = AuditWriter::open(&p, FsyncPolicy::Never).unwrap_err();
        assert!(e.to_string().contains("line 4"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn rejects_bad_events() {
        let d = crate::atomic::tempdir("audit-bad");
        let mut w = AuditWriter::open(d.join("a.jsonl"), FsyncPolicy::Never).unwrap();
        let mut e = event(0);
        e.scores.push(f32::NAN);
        assert!(w
            .append(&e)
            .unwrap_err()
            .to_string()
            .contains("field \"scores\""));
        let mut e = event(0);
        e.model_sha256 = "xyz".into();
        assert!(w.append(&e).is_err());
        let mut e = event(0);
        e.verdict.decision = Decision::Grant;
        e.verdict.reason = Reason::CameraLost;
        assert!(w.append(&e).is_err());
        assert_eq!(w.next_seq(), 0);
        std::fs::remove_dir_all(d).unwrap();
    }

    proptest! {
        #[test]
        fn chain_of_random_events_verifies(
            scores in prop::collection::vec(prop::collection::vec(0.0f32..=1.0, 0..5), 1..8),
        ) {
            let d = crate::atomic::tempdir("audit-prop");
            let p = d.join("audit.jsonl");
            let mut w = AuditWriter::open(&p, FsyncPolicy::Never).unwrap();
            for (i, s) in scores.iter().enumerate() {
                let mut e = event(i as u64);
                e.scores = s.clone();
                let rec = w.append(&e).unwrap();
                let back: AuditRecord = serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
                prop_assert_eq!(back, rec);
            }
            let s = verify_file(&p).unwrap();
            prop_assert_eq!(s.records, scores.len() as u64);
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
