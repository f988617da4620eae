//! What the door tells machines: a status file rewritten about once a second (for a
//! monitoring agent, a health check or `watch cat /run/fas/status.json`) and, with
//! `--json`, one JSON event per line on stdout instead of the human-readable lines.
//!
//! The status file is replaced atomically (temp file + rename in the same directory), so a
//! reader never sees half a file; it is not fsynced — it lives on a tmpfs such as `/run`,
//! and syncing an SD card every second would wear it out. A status write that fails is
//! reported once and retried; it never stops or opens the door.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fas_core::decision::{Decision, Reason};
use serde::Serialize;

use crate::camera::wall_ms_now;
use crate::policy::SessionOutcome;

pub const STATUS_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    /// Not opened yet.
    Starting,
    Streaming,
    /// Lost or not openable; reconnecting with the door locked.
    Down,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub grant: u64,
    pub deny: u64,
    pub no_decision: u64,
}

/// One decision as events and the status file report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionInfo {
    pub time_ms: u64,
    pub decision: Decision,
    pub reason: Reason,
    pub aggregate: Option<f32>,
    pub threshold: f32,
    pub frames_used: usize,
    /// The enrolment id the decision concerns (access modes with identity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
}

impl DecisionInfo {
    pub fn of(out: &SessionOutcome, time_ms: u64) -> DecisionInfo {
        DecisionInfo {
            time_ms,
            decision: out.verdict.decision,
            reason: out.verdict.reason,
            aggregate: out.aggregate,
            threshold: out.threshold_used,
            frames_used: out.frames_used,
            person: None,
        }
    }
}

/// The status file's content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub v: u32,
    pub pid: u32,
    /// When this status was written.
    pub time_ms: u64,
    pub started_ms: u64,
    /// `false` in the last write, after the door was locked for good.
    pub running: bool,
    pub camera: CameraState,
    pub camera_source: String,
    /// Frames per second over the recent frames; `None` before two frames.
    pub fps: Option<f32>,
    pub frames: u64,
    pub decisions: Counts,
    pub last_decision: Option<DecisionInfo>,
    pub model_sha256: String,
}

impl Status {
    pub fn new(camera_source: String, model_sha256: String) -> Status {
        Status {
            v: STATUS_VERSION,
            pid: std::process::id(),
            time_ms: wall_ms_now(),
            started_ms: wall_ms_now(),
            running: true,
            camera: CameraState::Starting,
            camera_source,
            fps: None,
            frames: 0,
            decisions: Counts::default(),
            last_decision: None,
            model_sha256,
        }
    }
}

/// Rewrites the status file at most every `every`, and at once when forced.
#[derive(Debug)]
pub struct StatusFile {
    path: PathBuf,
    every: Duration,
    last: Option<Instant>,
    /// The last write failed (reported once until a write succeeds again).
    failing: bool,
}

impl StatusFile {
    pub fn new(path: PathBuf, every: Duration) -> StatusFile {
        StatusFile {
            path,
            every,
            last: None,
            failing: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether [`StatusFile::update`] would write now: `every` has passed since the last
    /// write, or `force`. Lets the caller gather the status only when it is written.
    pub fn due(&self, force: bool) -> bool {
        force || self.last.is_none_or(|t| t.elapsed() >= self.every)
    }

    /// Writes `status` if [`StatusFile::due`]. Errors are reported on stderr, once per
    /// failing stretch, and never returned.
    pub fn update(&mut self, status: &mut Status, force: bool) {
        if !self.due(force) {
            return;
        }
        self.last = Some(Instant::now());
        status.time_ms = wall_ms_now();
        match write_replace(&self.path, status) {
            Ok(()) => self.failing = false,
            Err(e) => {
                if !self.failing {
                    eprintln!(
                        "fas-edge: status file {}: {e} (the door keeps working; check status.path and its directory)",
                        self.path.display()
                    );
                }
                self.failing = true;
            }
        }
    }
}

/// Readers see the old or the new file, never a torn one
/// ([`fas_core::atomic::replace_atomic`]: no fsync, the file is rewritten every few seconds).
fn write_replace(path: &Path, status: &Status) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    fas_core::atomic::replace_atomic(path, &bytes)
}

/// How the door reports events on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFormat {
    /// `decision: grant (above_threshold) aggregate=… threshold=… frames=…` lines.
    #[default]
    Text,
    /// One JSON object per line, with an `"event"` field.
    Json,
}

/// A line on stdout for machines.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    Ready {
        time_ms: u64,
        camera: &'a str,
        model_sha256: &'a str,
    },
    Decision(&'a DecisionInfo),
    CameraLost {
        time_ms: u64,
        error: &'a str,
    },
    CameraBack {
        time_ms: u64,
    },
    /// Something needs a person: the door keeps running, locked (e.g. the audit log
    /// cannot be written — a full disk).
    Alarm {
        time_ms: u64,
        what: &'a str,
        error: &'a str,
    },
    Stopped {
        time_ms: u64,
        frames: u64,
        decisions: &'a Counts,
    },
}

impl EventFormat {
    /// The stdout line for `event` in this format, if this format reports it (the text
    /// format prints decisions only; the rest goes to stderr as before).
    pub fn line(self, event: &Event<'_>) -> Option<String> {
        match self {
            EventFormat::Json => Some(
                serde_json::to_string(event).expect("events always serialise (finite numbers)"),
            ),
            EventFormat::Text => match event {
                Event::Decision(d) => Some(format!(
                    "decision: {} ({}) aggregate={} threshold={:.4} frames={}",
                    wire(&d.decision),
                    wire(&d.reason),
                    d.aggregate.map_or("-".into(), |a| format!("{a:.4}")),
                    d.threshold,
                    d.frames_used
                )),
                _ => None,
            },
        }
    }

    pub fn emit(self, event: &Event<'_>) {
        if let Some(l) = self.line(event) {
            println!("{l}");
        }
    }
}

/// The snake_case wire name of a serde enum value (as in the audit log and events).
pub fn wire<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(aggregate: Option<f32>) -> DecisionInfo {
        DecisionInfo {
            time_ms: 1_700_000_000_123,
            decision: Decision::Deny,
            reason: Reason::BelowThreshold,
            aggregate,
            threshold: 0.5,
            frames_used: 3,
            person: None,
        }
    }

    #[test]
    fn text_decision_line_is_the_familiar_one_and_json_parses_back() {
        let d = info(Some(0.25));
        assert_eq!(
            EventFormat::Text.line(&Event::Decision(&d)).unwrap(),
            "decision: deny (below_threshold) aggregate=0.2500 threshold=0.5000 frames=3"
        );
        let j: serde_json::Value =
            serde_json::from_str(&EventFormat::Json.line(&Event::Decision(&d)).unwrap()).unwrap();
        assert_eq!(j["event"], "decision");
        assert_eq!(j["decision"], "deny");
        assert_eq!(j["reason"], "below_threshold");
        assert_eq!(j["aggregate"], 0.25);
        assert_eq!(j["frames_used"], 3);
        let none = info(None);
        assert!(EventFormat::Text
            .line(&Event::Decision(&none))
            .unwrap()
            .contains("aggregate=-"));
        // Only decisions go to stdout in the text format.
        let c = Counts::default();
        let stopped = Event::Stopped {
            time_ms: 1,
            frames: 2,
            decisions: &c,
        };
        assert_eq!(EventFormat::Text.line(&stopped), None);
        let j: serde_json::Value =
            serde_json::from_str(&EventFormat::Json.line(&stopped).unwrap()).unwrap();
        assert_eq!(j["event"], "stopped");
        assert_eq!(j["decisions"]["grant"], 0);
        let lost = EventFormat::Json
            .line(&Event::CameraLost {
                time_ms: 5,
                error: "gone \"x\"",
            })
            .unwrap();
        let j: serde_json::Value = serde_json::from_str(&lost).unwrap();
        assert_eq!(
            (j["event"].as_str(), j["error"].as_str()),
            (Some("camera_lost"), Some("gone \"x\""))
        );
    }

    #[test]
    fn status_file_is_replaced_whole_and_rate_limited() {
        let d = std::env::temp_dir().join(format!("fas-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("status.json");
        let mut f = StatusFile::new(path.clone(), Duration::from_secs(3600));
        let mut s = Status::new("synthetic:1".into(), "ab".repeat(32));
        f.update(&mut s, false);
        let read = || -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
        };
        assert_eq!(read()["camera"], "starting");
        assert_eq!(read()["v"], STATUS_VERSION);
        // Within `every`: not rewritten…
        s.camera = CameraState::Streaming;
        s.frames = 10;
        f.update(&mut s, false);
        assert_eq!(read()["frames"], 0);
        // …unless forced (a decision, a camera change, the end).
        s.decisions.grant += 1;
        s.last_decision = Some(info(Some(0.9)));
        f.update(&mut s, true);
        let j = read();
        assert_eq!(
            (j["frames"].as_u64(), j["camera"].as_str()),
            (Some(10), Some("streaming"))
        );
        assert_eq!(j["decisions"]["grant"], 1);
        assert_eq!(j["last_decision"]["reason"], "below_threshold");
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // A directory that does not exist: reported, not fatal, and retried.
        let mut bad = StatusFile::new(d.join("missing/status.json"), Duration::ZERO);
        bad.update(&mut s, false);
        assert!(bad.failing);
        std::fs::create_dir_all(d.join("missing")).unwrap();
        bad.update(&mut s, false);
        assert!(!bad.failing);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
