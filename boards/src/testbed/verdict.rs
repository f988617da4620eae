//! Reads the guest's serial log and decides whether the real-device test passed.
//!
//! Decisions come from the audit log fas-edge wrote in the guest (copied to the console
//! after the run, hash chain verified here); what was in front of the camera comes from the
//! feeder's session events; the relay from the GPIO watcher. A decision belongs to the
//! session that was on screen when its frames were captured (the record's `captured_ms`,
//! first and last frame): on a slow board, or under emulation, a decision can come seconds
//! after its frames, even after the next session started. A decision whose frames span
//! two sessions, or a gap, belongs to none, and must not be a Grant. Records without
//! frames (camera lost) belong to the session whose window (its start up to the next
//! start) holds their decision time.

use fas_core::audit::{verify_chain, AuditRecord};
use fas_core::decision::{Decision, Reason};
use fas_core::synthfas::Presentation;
use serde::Serialize;

use super::events::{Event, AUDIT_PREFIX};
use super::plan::Plan;

/// Everything the serial log said.
#[derive(Debug, Default)]
pub struct SerialLog {
    pub events: Vec<Event>,
    pub audit_lines: Vec<String>,
    /// Lines that carried the event prefix but did not parse.
    pub garbled: Vec<String>,
}

impl SerialLog {
    pub fn parse(text: &str) -> SerialLog {
        let mut log = SerialLog::default();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(at) = line.find(AUDIT_PREFIX) {
                log.audit_lines
                    .push(line[at + AUDIT_PREFIX.len()..].to_string());
            } else if let Some(e) = Event::parse(line) {
                match e {
                    Ok(e) => log.events.push(e),
                    Err(_) => log.garbled.push(line.to_string()),
                }
            }
        }
        log
    }
}

/// Decisions made while one session was in front of the camera.
#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    pub index: usize,
    pub presentation: Presentation,
    pub start_ms: u64,
    pub grant: usize,
    pub deny: usize,
    pub no_decision: usize,
    /// Aggregate scores of the decisions, in order.
    pub aggregates: Vec<Option<f32>>,
}

/// The test's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub sessions: Vec<SessionReport>,
    pub decisions: usize,
    pub relay_pulses: usize,
    pub framebuffer_nonzero: u64,
    /// Everything that went wrong; empty means the test passed.
    pub failures: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// A human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::from("session  presentation  grant  deny  no_decision  aggregates\n");
        for r in &self.sessions {
            let aggs: Vec<String> = r
                .aggregates
                .iter()
                .map(|a| a.map_or("-".into(), |a| format!("{a:.3}")))
                .collect();
            s += &format!(
                "{:>7}  {:<12}  {:>5}  {:>4}  {:>11}  {}\n",
                r.index,
                format!("{:?}", r.presentation).to_lowercase(),
                r.grant,
                r.deny,
                r.no_decision,
                aggs.join(" ")
            );
        }
        s += &format!(
            "decisions {}, relay pulses {}, framebuffer bytes written {}\n",
            self.decisions, self.relay_pulses, self.framebuffer_nonzero
        );
        s
    }
}

/// How long after a session's last frame was queued the loop may still deliver it (vivid
/// copies the newest output buffer into each capture buffer; the feeder then shows an
/// empty scene).
pub const CAPTURE_SLACK_MS: u64 = 300;

/// How far after a `Grant`'s audit time the relay must have gone active (the audit line is
/// written, and synced, before the actuator runs; the watcher polls every 50 ms).
pub const RELAY_LAG_MS: u64 = 2_000;

/// Whether the audit log `text` (fas-edge's JSON lines, read while it is still being
/// written) holds a decision taken on scores — a Grant or a Deny on the aggregate — whose
/// frames were all captured at or after `since_ms`: the door has judged the face shown
/// since then, and [`judge`] will attribute that decision to it. The guest's feeder keeps a
/// presentation on screen until this holds (see `Plan::hold_max_seconds`). Lines that do
/// not parse (the last one may be half written) are skipped; records without capture
/// times (camera lost, faults) never count.
pub fn decided_on_frames_since(text: &str, since_ms: u64) -> bool {
    text.lines()
        .filter_map(|l| serde_json::from_str::<AuditRecord>(l).ok())
        .any(|r| {
            matches!(r.reason, Reason::AboveThreshold | Reason::BelowThreshold)
                && r.captured_ms.is_some_and(|[first, _]| first >= since_ms)
        })
}

/// Judges one run. `relay_line` is the GPIO offset of the relay (active high). The checks
/// run in this order, each adding its failures: the guest's own reports, the audit log,
/// Grants outside every session, each session's decisions, Grants before any face, Grants
/// while the camera was unplugged, the relay, the framebuffer, fas-edge's end.
pub fn judge(plan: &Plan, log: &SerialLog, relay_line: u32) -> Verdict {
    let mut failures = Vec::new();
    let done = guest_reports(log, &mut failures);
    let records = audit_records(log, &mut failures);
    let windows = Windows::new(plan, log, done, &mut failures);
    grants_outside_sessions(&windows, &records, &mut failures);
    let sessions = session_reports(plan, &windows, &records, &mut failures);
    grants_before_any_face(&windows, &records, &mut failures);
    grants_while_unplugged(plan, log, &records, &mut failures);
    let relay_pulses = relay_follows_grants(log, &records, relay_line, &mut failures);
    let framebuffer_nonzero = framebuffer_written(log, &mut failures);
    edge_still_running(log, &mut failures);
    Verdict {
        sessions,
        decisions: records.len(),
        relay_pulses,
        framebuffer_nonzero,
        failures,
    }
}

/// Garbled event lines, the guest's errors, and its `done` (returned).
fn guest_reports(log: &SerialLog, failures: &mut Vec<String>) -> Option<u64> {
    for g in &log.garbled {
        failures.push(format!("unparsable event line: {g}"));
    }
    for e in &log.events {
        if let Event::Error { what, .. } = e {
            failures.push(format!("guest error: {what}"));
        }
    }
    let done = log.events.iter().find_map(|e| match e {
        Event::Done { t_ms } => Some(*t_ms),
        _ => None,
    });
    if done.is_none() {
        failures.push("the guest never reported `done` (hang, crash or timeout)".into());
    }
    done
}

/// The audit log's records, its hash chain verified first.
fn audit_records(log: &SerialLog, failures: &mut Vec<String>) -> Vec<AuditRecord> {
    let joined: String = log.audit_lines.iter().map(|l| format!("{l}\n")).collect();
    if let Err(e) = verify_chain(joined.as_bytes()) {
        failures.push(format!(
            "audit log copied from the guest does not verify: {e}"
        ));
    }
    let records: Vec<AuditRecord> = log
        .audit_lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if records.len() != log.audit_lines.len() {
        failures.push(format!(
            "{} of {} audit lines are not audit records",
            log.audit_lines.len() - records.len(),
            log.audit_lines.len()
        ));
    }
    records
}

/// The sessions the feeder played, and which of them each decision belongs to.
struct Windows<'a> {
    /// `(plan index, start)` of each session started, in order.
    starts: Vec<(usize, u64)>,
    done: Option<u64>,
    events: &'a [Event],
}

impl<'a> Windows<'a> {
    fn new(
        plan: &Plan,
        log: &'a SerialLog,
        done: Option<u64>,
        failures: &mut Vec<String>,
    ) -> Windows<'a> {
        let starts: Vec<(usize, u64)> = log
            .events
            .iter()
            .filter_map(|e| match e {
                Event::SessionStart { index, t_ms, .. } => Some((*index, *t_ms)),
                _ => None,
            })
            .collect();
        if starts.len() != plan.sessions.len() {
            failures.push(format!(
                "the feeder started {} of the plan's {} sessions",
                starts.len(),
                plan.sessions.len()
            ));
        }
        Windows {
            starts,
            done,
            events: &log.events,
        }
    }

    /// Session `k`'s window ends where the next starts (or the run is done).
    fn window_end(&self, k: usize) -> u64 {
        self.starts
            .get(k + 1)
            .map(|s| s.1)
            .or(self.done)
            .unwrap_or(u64::MAX)
    }

    /// The last moment a frame of session `k` can have been captured.
    fn shown_end(&self, k: usize) -> u64 {
        let index = self.starts[k].0;
        self.events
            .iter()
            .find_map(|e| match e {
                Event::SessionEnd { index: i, t_ms, .. } if *i == index => Some(*t_ms),
                _ => None,
            })
            .unwrap_or_else(|| self.window_end(k))
            .saturating_add(CAPTURE_SLACK_MS)
    }

    /// Which entry of `starts` the record belongs to.
    fn owner(&self, r: &AuditRecord) -> Option<usize> {
        let n = self.starts.len();
        match r.captured_ms {
            Some([first, last]) => (0..n).find(|&k| {
                first >= self.starts[k].1 && last <= self.shown_end(k).min(self.window_end(k))
            }),
            None => {
                (0..n).find(|&k| r.time_ms >= self.starts[k].1 && r.time_ms < self.window_end(k))
            }
        }
    }
}

/// A Grant on frames that span two sessions, or a gap, belongs to none.
fn grants_outside_sessions(w: &Windows, records: &[AuditRecord], failures: &mut Vec<String>) {
    for r in records {
        if r.decision == Decision::Grant && r.captured_ms.is_some() && w.owner(r).is_none() {
            failures.push(format!(
                "Grant (seq {}) on frames captured {:?}, not within one session",
                r.seq, r.captured_ms
            ));
        }
    }
}

/// Each session's decisions: a live face granted (unless its camera is unplugged), an
/// attack never granted and denied on its score at least once.
fn session_reports(
    plan: &Plan,
    w: &Windows,
    records: &[AuditRecord],
    failures: &mut Vec<String>,
) -> Vec<SessionReport> {
    let mut sessions = Vec::new();
    for (k, &(index, start)) in w.starts.iter().enumerate() {
        let Some(planned) = plan.sessions.get(index) else {
            failures.push(format!(
                "the feeder played session {index}, not in the plan"
            ));
            continue;
        };
        let mine: Vec<&AuditRecord> = records.iter().filter(|r| w.owner(r) == Some(k)).collect();
        let count = |d: Decision| mine.iter().filter(|r| r.decision == d).count();
        let report = SessionReport {
            index,
            presentation: planned.presentation,
            start_ms: start,
            grant: count(Decision::Grant),
            deny: count(Decision::Deny),
            no_decision: count(Decision::NoDecision),
            aggregates: mine.iter().map(|r| r.aggregate).collect(),
        };
        let live = planned.presentation == Presentation::Live;
        if live && planned.unplug_after_s.is_none() && report.grant == 0 {
            failures.push(format!(
                "session {index} (live): no Grant (decisions: {} deny, {} no decision)",
                report.deny, report.no_decision
            ));
        }
        if !live {
            if report.grant > 0 {
                failures.push(format!(
                    "session {index} ({:?} attack): {} Grant",
                    planned.presentation, report.grant
                ));
            }
            let scored_deny = mine
                .iter()
                .filter(|r| r.reason == Reason::BelowThreshold)
                .count();
            if scored_deny == 0 {
                failures.push(format!(
                    "session {index} ({:?} attack): never denied on its score",
                    planned.presentation
                ));
            }
        }
        sessions.push(report);
    }
    sessions
}

/// No Grant on frames seen before the first session started.
fn grants_before_any_face(w: &Windows, records: &[AuditRecord], failures: &mut Vec<String>) {
    let first_start = w.starts.first().map_or(u64::MAX, |s| s.1);
    for r in records {
        let seen = r.captured_ms.map_or(r.time_ms, |c| c[0]);
        if r.decision == Decision::Grant && seen < first_start {
            failures.push(format!(
                "Grant at {} before any face was shown (seq {})",
                r.time_ms, r.seq
            ));
        }
    }
}

/// No Grant on the camera's absence: none judged on frames captured while it was gone
/// (or, for a record without capture times, decided while it was gone). A Grant decided
/// just after the unplug on frames captured before it is the live face that was there
/// (under TCG a decision lands seconds after its frames).
fn grants_while_unplugged(
    plan: &Plan,
    log: &SerialLog,
    records: &[AuditRecord],
    failures: &mut Vec<String>,
) {
    let unplug = log.events.iter().find_map(|e| match e {
        Event::Unplug { t_ms } => Some(*t_ms),
        _ => None,
    });
    let replug = log.events.iter().find_map(|e| match e {
        Event::Replug { t_ms } => Some(*t_ms),
        _ => None,
    });
    let wants_unplug = plan.sessions.iter().any(|s| s.unplug_after_s.is_some());
    match (wants_unplug, unplug, replug) {
        (false, _, _) => {}
        (true, Some(u), Some(p)) => {
            for r in records.iter().filter(|r| r.decision == Decision::Grant) {
                let while_gone = match r.captured_ms {
                    Some([first, last]) => last >= u && first <= p,
                    None => r.time_ms >= u && r.time_ms <= p,
                };
                if while_gone {
                    failures.push(format!(
                        "Grant while the camera was unplugged (seq {}, decided at {}, frames captured {:?}, unplugged {u}..{p})",
                        r.seq, r.time_ms, r.captured_ms
                    ));
                }
            }
        }
        (true, _, _) => failures.push(
            "the plan unplugs the camera but the guest never reported unplug and replug".into(),
        ),
    }
}

/// The relay: every rising edge follows a Grant, every Grant drives the line. Returns the
/// number of rising edges.
fn relay_follows_grants(
    log: &SerialLog,
    records: &[AuditRecord],
    relay_line: u32,
    failures: &mut Vec<String>,
) -> usize {
    let rises: Vec<u64> = log
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Gpio {
                t_ms,
                line,
                high: true,
            } if *line == relay_line => Some(*t_ms),
            _ => None,
        })
        .collect();
    let grants: Vec<u64> = records
        .iter()
        .filter(|r| r.decision == Decision::Grant)
        .map(|r| r.time_ms)
        .collect();
    for &rise in &rises {
        if !grants
            .iter()
            .any(|&g| rise + 100 >= g && rise <= g + RELAY_LAG_MS)
        {
            failures.push(format!(
                "relay line {relay_line} went active at {rise} without a Grant"
            ));
        }
    }
    for &g in &grants {
        if !rises
            .iter()
            .any(|&rise| rise + 100 >= g && rise <= g + RELAY_LAG_MS)
        {
            failures.push(format!(
                "Grant at {g}: relay line {relay_line} never went active within {RELAY_LAG_MS} ms"
            ));
        }
    }
    rises.len()
}

/// The framebuffer's non-zero bytes (the display was drawn on).
fn framebuffer_written(log: &SerialLog, failures: &mut Vec<String>) -> u64 {
    let framebuffer_nonzero = log
        .events
        .iter()
        .find_map(|e| match e {
            Event::Framebuffer { nonzero, .. } => Some(*nonzero),
            _ => None,
        })
        .unwrap_or(0);
    if framebuffer_nonzero == 0 {
        failures.push("the framebuffer was never written (all zero or not reported)".into());
    }
    framebuffer_nonzero
}

/// fas-edge was still running when the test ended.
fn edge_still_running(log: &SerialLog, failures: &mut Vec<String>) {
    match log.events.iter().find_map(|e| match e {
        Event::EdgeExit {
            running, status, ..
        } => Some((*running, *status)),
        _ => None,
    }) {
        Some((true, _)) => {}
        Some((false, status)) => failures.push(format!(
            "fas-edge exited on its own during the test (status {status})"
        )),
        None => failures.push("the guest never reported fas-edge's end".into()),
    }
}

/// Judges the trigger phase: fas-edge in triggered mode watching GPIO line 3 decided
/// nothing before the host pressed QEMU's power button (`pressed`), and at least one
/// session after it. Returns the phase's decisions and its failures.
pub fn judge_trigger(log: &SerialLog, pressed: bool, camera: &str) -> (Vec<String>, Vec<String>) {
    let mut failures = Vec::new();
    let ready = log.events.iter().find_map(|e| match e {
        Event::TriggerReady { decisions, .. } => Some(*decisions),
        _ => None,
    });
    match ready {
        None => failures.push("trigger phase: fas-edge never became ready".into()),
        Some(0) => {}
        Some(n) => failures.push(format!(
            "trigger phase: {n} decision(s) before the button was pressed (triggered mode must wait for its trigger)"
        )),
    }
    if ready.is_some() && !pressed {
        failures.push("trigger phase: the host never pressed the button (QMP)".into());
    }
    let report = log.events.iter().find_map(|e| match e {
        Event::TriggerReport {
            decisions,
            camera,
            frames,
            ..
        } => Some((decisions.clone(), camera.clone(), *frames)),
        _ => None,
    });
    let (decisions, opened, frames) = report.unwrap_or_default();
    if ready.is_some() {
        // The phase's camera is its own backend (nokhwa): it must be the one that opened
        // and it must have delivered frames through to fas-edge.
        if !opened.starts_with(&format!("{camera} ")) {
            failures.push(format!(
                "trigger phase: fas-edge opened camera `{opened}`, not {camera}"
            ));
        }
        if frames == 0 {
            failures.push(format!("trigger phase: no frames from {camera}"));
        }
    }
    if pressed && decisions.is_empty() {
        failures.push("trigger phase: the GPIO edge started no session".into());
    }
    if decisions.iter().any(|d| d.starts_with("grant/")) {
        // The camera shows no one by then; a grant would be a fault.
        failures.push(format!(
            "trigger phase: a grant with nobody in front of the camera: {decisions:?}"
        ));
    }
    (decisions, failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testbed::plan::PlannedSession;
    use fas_core::audit::{AuditEvent, AuditWriter, FsyncPolicy};
    use fas_core::decision::Verdict as CoreVerdict;

    fn plan() -> Plan {
        let s = |index, presentation| PlannedSession {
            index,
            presentation,
            segment: index as u64,
            file: format!("session-{index:02}.yuyv"),
            frames: 4,
            seconds: 10.0,
            unplug_after_s: None,
        };
        Plan {
            width: 720,
            height: 480,
            seed: 1,
            gap_seconds: 2.0,
            hold_max_seconds: None,
            sessions: vec![s(0, Presentation::Live), s(1, Presentation::Print)],
        }
    }

    /// A real audit log (fas-core's writer) with decisions at the given times.
    fn audit(decisions: &[(u64, Reason, f32)]) -> Vec<String> {
        let d: Vec<_> = decisions.iter().map(|&(t, r, a)| (t, r, a, None)).collect();
        audit_captured(&d)
    }

    /// Like [`audit`], with the frames' capture times.
    fn audit_captured(decisions: &[(u64, Reason, f32, Option<[u64; 2]>)]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut w = AuditWriter::open(&path, FsyncPolicy::Never).unwrap();
        for &(t, reason, agg, captured_ms) in decisions {
            w.append(&AuditEvent {
                time_ms: t,
                verdict: CoreVerdict::from_reason(reason),
                scores: vec![agg; 3],
                aggregate: Some(agg),
                threshold: 0.5,
                frames_used: 3,
                model_sha256: "ab".repeat(32),
                captured_ms,
                lockout_until_ms: None,
                access: None,
            })
            .unwrap();
        }
        drop(w);
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_hold_ends_on_a_scored_decision_on_frames_of_the_session_only() {
        let lines = audit_captured(&[
            // Spans the previous session and this one (started at 10_000).
            (12_000, Reason::BelowThreshold, 0.5, Some([9_000, 11_000])),
            // Camera lost: no frames.
            (13_000, Reason::CameraLost, 0.0, None),
            // Too few frames: not a decision on scores.
            (14_000, Reason::NotEnoughFrames, 0.9, Some([10_500, 10_500])),
        ]);
        let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        assert!(!decided_on_frames_since(&text, 10_000));
        assert!(
            decided_on_frames_since(&text, 9_000),
            "the spanning Deny is scored"
        );
        // A half-written last line is skipped, not an error.
        text.push_str(r#"{"v":1,"seq":3,"time_"#);
        assert!(!decided_on_frames_since(&text, 10_000));
        for reason in [Reason::AboveThreshold, Reason::BelowThreshold] {
            let more = audit_captured(&[
                (12_000, Reason::BelowThreshold, 0.5, Some([9_000, 11_000])),
                (15_000, reason, 0.9, Some([10_000, 12_500])),
            ]);
            let text: String = more.iter().map(|l| format!("{l}\n")).collect();
            assert!(decided_on_frames_since(&text, 10_000), "{reason:?}");
            assert!(!decided_on_frames_since(&text, 10_001), "{reason:?}");
        }
        assert!(!decided_on_frames_since("", 0));
    }

    fn serial(audit_lines: &[String], gpio: &[u64], extra: &[Event]) -> String {
        let mut ev = vec![
            Event::SessionStart {
                t_ms: 1_000,
                index: 0,
                presentation: "live".into(),
            },
            Event::SessionStart {
                t_ms: 20_000,
                index: 1,
                presentation: "print".into(),
            },
        ];
        for &t in gpio {
            ev.push(Event::Gpio {
                t_ms: t,
                line: 0,
                high: true,
            });
            ev.push(Event::Gpio {
                t_ms: t + 500,
                line: 0,
                high: false,
            });
        }
        ev.extend_from_slice(extra);
        ev.push(Event::Framebuffer {
            t_ms: 40_000,
            bytes: 100,
            nonzero: 60,
        });
        ev.push(Event::EdgeExit {
            t_ms: 40_000,
            running: true,
            status: 0,
        });
        ev.push(Event::Done { t_ms: 40_001 });
        let mut s = String::from("[    1.0] booting\r\n");
        for e in ev {
            s += &format!("{}\r\n", e.line());
        }
        for l in audit_lines {
            s += &format!("{AUDIT_PREFIX}{l}\n");
        }
        s
    }

    #[test]
    fn a_correct_run_passes() {
        let a = audit(&[
            (5_000, Reason::AboveThreshold, 0.9),
            (25_000, Reason::BelowThreshold, 0.1),
        ]);
        let v = judge(&plan(), &SerialLog::parse(&serial(&a, &[5_050], &[])), 0);
        assert!(v.passed(), "{:?}", v.failures);
        assert_eq!(v.sessions[0].grant, 1);
        assert_eq!(v.sessions[1].deny, 1);
        assert_eq!(v.relay_pulses, 1);
        assert!(v.table().contains("print"));
    }

    #[test]
    fn a_late_decision_belongs_to_the_session_its_frames_came_from() {
        // Both decisions come after the print attack started, but the Grant judged frames
        // of the live session.
        let a = audit_captured(&[
            (21_500, Reason::AboveThreshold, 0.9, Some([15_000, 18_000])),
            (30_000, Reason::BelowThreshold, 0.1, Some([22_000, 24_000])),
        ]);
        let v = judge(&plan(), &SerialLog::parse(&serial(&a, &[21_550], &[])), 0);
        assert!(v.passed(), "{:?}", v.failures);
        assert_eq!((v.sessions[0].grant, v.sessions[1].grant), (1, 0));
        assert_eq!(v.sessions[1].deny, 1);
        // The same Grant on frames of the attack fails, however late it comes.
        let a = audit_captured(&[
            (10_000, Reason::AboveThreshold, 0.9, Some([5_000, 6_000])),
            (30_000, Reason::AboveThreshold, 0.9, Some([22_000, 24_000])),
        ]);
        let v = judge(
            &plan(),
            &SerialLog::parse(&serial(&a, &[10_050, 30_050], &[])),
            0,
        );
        assert!(
            v.failures
                .iter()
                .any(|f| f.contains("Print attack): 1 Grant")),
            "{:?}",
            v.failures
        );
    }

    #[test]
    fn a_grant_on_frames_of_two_sessions_fails() {
        let a = audit_captured(&[
            (5_000, Reason::AboveThreshold, 0.9, Some([2_000, 4_000])),
            (25_000, Reason::AboveThreshold, 0.9, Some([18_000, 21_000])),
            (26_000, Reason::BelowThreshold, 0.1, Some([22_000, 23_000])),
        ]);
        let v = judge(
            &plan(),
            &SerialLog::parse(&serial(&a, &[5_050, 25_050], &[])),
            0,
        );
        assert!(
            v.failures
                .iter()
                .any(|f| f.contains("not within one session")),
            "{:?}",
            v.failures
        );
    }

    #[test]
    fn a_grant_during_an_attack_fails() {
        let a = audit(&[
            (5_000, Reason::AboveThreshold, 0.9),
            (25_000, Reason::AboveThreshold, 0.8),
        ]);
        let v = judge(
            &plan(),
            &SerialLog::parse(&serial(&a, &[5_050, 25_050], &[])),
            0,
        );
        assert!(
            v.failures
                .iter()
                .any(|f| f.contains("Print attack): 1 Grant")),
            "{:?}",
            v.failures
        );
    }

    #[test]
    fn the_relay_must_follow_grants_exactly() {
        let a = audit(&[
            (5_000, Reason::AboveThreshold, 0.9),
            (25_000, Reason::BelowThreshold, 0.1),
        ]);
        // Active without a Grant, and the Grant's own pulse missing.
        let v = judge(&plan(), &SerialLog::parse(&serial(&a, &[12_000], &[])), 0);
        assert!(v.failures.iter().any(|f| f.contains("without a Grant")));
        assert!(v.failures.iter().any(|f| f.contains("never went active")));
        // Another line's activity does not count for the relay.
        let v = judge(&plan(), &SerialLog::parse(&serial(&a, &[5_050], &[])), 3);
        assert!(!v.passed());
    }

    #[test]
    fn an_edited_audit_line_and_a_missing_done_fail() {
        let mut a = audit(&[
            (5_000, Reason::AboveThreshold, 0.9),
            (25_000, Reason::BelowThreshold, 0.1),
        ]);
        a[1] = a[1].replace("below_threshold", "above_threshold");
        let text = serial(&a, &[5_050], &[]);
        let v = judge(&plan(), &SerialLog::parse(&text), 0);
        assert!(
            v.failures.iter().any(|f| f.contains("does not verify")),
            "{:?}",
            v.failures
        );
        let cut: String = text
            .lines()
            .filter(|l| !l.contains("\"done\""))
            .map(|l| format!("{l}\n"))
            .collect();
        let v = judge(&plan(), &SerialLog::parse(&cut), 0);
        assert!(v
            .failures
            .iter()
            .any(|f| f.contains("never reported `done`")));
    }

    #[test]
    fn no_grant_while_unplugged() {
        let mut p = plan();
        p.sessions[0].unplug_after_s = Some(4.0);
        let a = audit(&[
            (6_000, Reason::AboveThreshold, 0.9),
            (25_000, Reason::BelowThreshold, 0.1),
        ]);
        let ev = [Event::Unplug { t_ms: 5_000 }, Event::Replug { t_ms: 9_000 }];
        let v = judge(&p, &SerialLog::parse(&serial(&a, &[6_050], &ev)), 0);
        assert!(
            v.failures.iter().any(|f| f.contains("unplugged")),
            "{:?}",
            v.failures
        );
        let v = judge(&p, &SerialLog::parse(&serial(&a, &[6_050], &[])), 0);
        assert!(v
            .failures
            .iter()
            .any(|f| f.contains("never reported unplug")));
        // Decided after the unplug on frames captured before it: the live face that was
        // there, not the camera's absence.
        let before = audit_captured(&[
            (6_000, Reason::AboveThreshold, 0.9, Some([2_000, 4_500])),
            (25_000, Reason::BelowThreshold, 0.1, Some([22_000, 24_000])),
        ]);
        let v = judge(&p, &SerialLog::parse(&serial(&before, &[6_050], &ev)), 0);
        assert!(
            !v.failures.iter().any(|f| f.contains("unplugged")),
            "{:?}",
            v.failures
        );
        // Frames reaching into the gap are a failure, whenever the decision came.
        let during = audit_captured(&[
            (12_000, Reason::AboveThreshold, 0.9, Some([4_000, 5_500])),
            (25_000, Reason::BelowThreshold, 0.1, Some([22_000, 24_000])),
        ]);
        let v = judge(&p, &SerialLog::parse(&serial(&during, &[12_050], &ev)), 0);
        assert!(
            v.failures.iter().any(|f| f.contains("unplugged")),
            "{:?}",
            v.failures
        );
    }

    #[test]
    fn the_trigger_phase_needs_a_press_and_a_session_after_it_only() {
        let report = |ready: Option<u32>, report: &[&str], camera: &str, frames: u64| {
            let mut events = Vec::new();
            if let Some(decisions) = ready {
                events.push(Event::TriggerReady { t_ms: 1, decisions });
            }
            events.push(Event::TriggerReport {
                t_ms: 2,
                decisions: report.iter().map(|s| s.to_string()).collect(),
                camera: camera.to_string(),
                frames,
            });
            SerialLog {
                events,
                ..SerialLog::default()
            }
        };
        let cam = "nokhwa:2 YUYV 640x480 @5 fps (vivid, Video4Linux)";
        let log = |ready: Option<u32>, r: &[&str]| report(ready, r, cam, 40);
        let judge_trigger = |log: &SerialLog, pressed| judge_trigger(log, pressed, "nokhwa:2");
        let (d, f) = judge_trigger(&log(Some(0), &["no_decision/no_face"]), true);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(d, vec!["no_decision/no_face".to_string()]);
        assert!(!judge_trigger(&log(Some(0), &[]), true).1.is_empty());
        assert!(
            !judge_trigger(&log(Some(1), &["deny/below_threshold"]), true)
                .1
                .is_empty()
        );
        assert!(
            !judge_trigger(&log(Some(0), &["no_decision/no_face"]), false)
                .1
                .is_empty()
        );
        assert!(!judge_trigger(&log(None, &[]), false).1.is_empty());
        assert!(
            !judge_trigger(&log(Some(0), &["grant/above_threshold"]), true)
                .1
                .is_empty()
        );
        // The wrong camera, or the right one without frames, fails the phase.
        let other = report(Some(0), &["no_decision/no_face"], "/dev/video0 YUYV", 40);
        let f = judge_trigger(&other, true).1;
        assert!(f.iter().any(|f| f.contains("not nokhwa:2")), "{f:?}");
        let idle = report(Some(0), &["no_decision/no_face"], cam, 0);
        let f = judge_trigger(&idle, true).1;
        assert!(f.iter().any(|f| f.contains("no frames")), "{f:?}");
        // `nokhwa:20` is not `nokhwa:2`.
        let near = report(Some(0), &["no_decision/no_face"], "nokhwa:20 YUYV", 40);
        assert!(!judge_trigger(&near, true).1.is_empty());
    }
}
