//! The door: Frame → Faces → FaceCrop → Score → Decision, one frame at a time.
//!
//! [`Door::step`] takes one frame (or a capture error) through every stage and feeds the
//! policy; a finished session is actuated, audit-logged and shown. Every failure on the
//! way becomes an observation that ends the session as `Deny`/`NoDecision` (contract 6):
//! no error path reaches the actuator as a grant.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fas_core::audit::{AuditEvent, AuditWriter};
use fas_core::decision::{Reason, Verdict};
use fas_core::preprocess::Face;
use fas_core::report::one_line;
use fas_infer::detect::{Detection, FaceDetector};

use crate::actuator::Actuator;
use crate::camera::{CaptureError, Frame};
use crate::crop::FaceCropper;
use crate::display::fb::FbWriter;
use crate::display::frame::FrameBuffer;
use crate::display::overlay::{draw_overlay, OverlayState};
use crate::display::png::Snapshots;
use crate::model::LoadedModel;
use crate::policy::{Observation, Policy, SessionOutcome, Trigger};
use crate::quality::{self, QualityConfig};
use crate::status::{DecisionInfo, Event, EventFormat};
use crate::track::Tracker;

/// Where the overlay goes.
pub enum Display {
    None,
    Framebuffer(FbWriter),
    Png(Snapshots),
}

/// What one step did (for the caller's loop, logs and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub observation: Option<Observation>,
    pub outcome: Option<SessionOutcome>,
}

pub struct Door<D: FaceDetector> {
    pub tracker: Tracker<D>,
    pub quality: QualityConfig,
    pub cropper: FaceCropper,
    pub model: LoadedModel,
    pub policy: Policy,
    pub actuator: Box<dyn Actuator + Send>,
    pub audit: AuditWriter,
    pub display: Display,
    /// Monotonic time of the last frame (for errors, which carry no timestamp).
    last_t: Duration,
    last_frame_at: Instant,
    /// Wall-clock minus frame-clock milliseconds of the latest frame (maps a session's
    /// frame times to capture times for the audit log).
    wall_offset_ms: Option<i64>,
    camera_down: bool,
    /// Frame time of the last trigger: frames captured before it (still queued when the
    /// button was pressed) are shown but not judged, so they neither count for the
    /// session nor look like a clock running backwards.
    trigger_floor_ms: Option<u64>,
    overlay: OverlayState,
    fps: Fps,
    /// How decisions and camera changes are reported on stdout.
    pub events: EventFormat,
    /// The latest decision, as reported.
    pub last_decision: Option<DecisionInfo>,
    /// The current lockout's end: (policy clock, wall clock).
    lockout_wall: Option<(u64, u64)>,
    /// A copy of every audit record to syslog (`audit.syslog`).
    pub forward: Option<crate::forward::SyslogForwarder>,
    /// Who may enter (`[access]`); `None`: liveness alone decides (no relay may be driven
    /// so: the config refuses it).
    pub access: Option<crate::access::gate::Gate>,
}

#[derive(Default)]
struct Fps {
    last: Option<Duration>,
    value: Option<f32>,
}

impl Fps {
    fn tick(&mut self, t: Duration) -> Option<f32> {
        if let Some(prev) = self.last {
            let dt = t.saturating_sub(prev).as_secs_f32();
            if dt > 0.0 {
                let f = 1.0 / dt;
                self.value = Some(self.value.map_or(f, |v| 0.9 * v + 0.1 * f));
            }
        }
        self.last = Some(t);
        self.value
    }
}

fn millis(t: Duration) -> u64 {
    t.as_millis() as u64
}

fn face_of(d: &Detection) -> Face {
    Face {
        bbox: d.bbox,
        landmarks: d.landmarks,
        score: d.score,
    }
}

impl<D: FaceDetector> Door<D> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tracker: Tracker<D>,
        quality: QualityConfig,
        model: LoadedModel,
        policy: Policy,
        mut actuator: Box<dyn Actuator + Send>,
        audit: AuditWriter,
        display: Display,
    ) -> Result<Self> {
        let cropper = FaceCropper::new(model.preprocess.clone())
            .with_context(|| format!("{}: preprocessing spec", model.origin))?;
        // Fail-safe start: the door is locked before the first frame.
        actuator.lock().context("locking the door at start-up")?;
        Ok(Door {
            tracker,
            quality,
            cropper,
            model,
            policy,
            actuator,
            audit,
            display,
            last_t: Duration::ZERO,
            last_frame_at: Instant::now(),
            wall_offset_ms: None,
            camera_down: false,
            trigger_floor_ms: None,
            overlay: OverlayState::default(),
            fps: Fps::default(),
            events: EventFormat::default(),
            last_decision: None,
            lockout_wall: None,
            forward: None,
            access: None,
        })
    }

    /// A trigger (stdin line, socket connection) asks for a session now.
    pub fn trigger(&mut self) -> Result<Option<SessionOutcome>> {
        let t = self.now_ms();
        self.trigger_floor_ms = Some(t);
        match self.policy.start(t, Trigger::External) {
            Some(out) => self.finish(out, None).map(Some),
            None => Ok(None),
        }
    }

    /// A credential from a reader or a JSON line. An enrolled one starts a session for its
    /// person; an unknown or unreadable one is denied at once (and audited). Ignored, with
    /// a note, where the access mode reads no credential or a session is already running.
    pub fn credential(
        &mut self,
        read: crate::access::credential::CredentialRead,
    ) -> Result<Option<SessionOutcome>> {
        let Some(gate) = self.access.as_mut().filter(|g| g.mode.needs_credential()) else {
            eprintln!("fas-edge: a credential arrived, but the access mode reads none; ignored");
            return Ok(None);
        };
        if self.policy.is_running() {
            eprintln!("fas-edge: a credential arrived during a running session; ignored");
            return Ok(None);
        }
        if let Err(why) = &read {
            eprintln!("fas-edge: credential not read: {why}");
        }
        let check = gate.check(&read);
        let known = matches!(check, crate::access::decide::CredentialCheck::Person(_));
        gate.hold(check);
        if known {
            return self.trigger();
        }
        // Refused before any face is looked at: a decision of its own, not a session, but
        // counted toward the lockout (someone trying card numbers).
        let t = self.now_ms();
        let reason = match &read {
            Err(_) => Reason::CredentialInvalid,
            Ok(_) => Reason::CredentialUnknown,
        };
        let out = self.policy.refuse(t, reason);
        self.finish(out, None).map(Some)
    }

    /// Time for events without a frame: the last frame's time plus wall time since.
    fn now_ms(&self) -> u64 {
        millis(self.last_t + self.last_frame_at.elapsed())
    }

    /// One frame (or capture error) through the pipeline.
    pub fn step(&mut self, frame: Result<Frame, CaptureError>) -> Result<StepReport> {
        let (obs, frame) = match frame {
            Ok(frame) if self.trigger_floor_ms.is_some_and(|f| millis(frame.t) < f) => {
                // Captured before the trigger (see `trigger_floor_ms`).
                self.show(&frame)?;
                return Ok(StepReport {
                    observation: None,
                    outcome: None,
                });
            }
            Ok(frame) => {
                self.trigger_floor_ms = None;
                if self.camera_down {
                    self.events.emit(&Event::CameraBack {
                        time_ms: crate::camera::wall_ms_now(),
                    });
                }
                self.camera_down = false;
                self.last_t = frame.t;
                self.last_frame_at = Instant::now();
                self.wall_offset_ms = Some(frame.wall_ms as i64 - millis(frame.t) as i64);
                (Some(self.observe(&frame)), Some(frame))
            }
            Err(e) => {
                let t = self.now_ms();
                let obs = match &e {
                    CaptureError::Lost { .. } | CaptureError::Open { .. } => {
                        if self.camera_down {
                            // One outcome per outage, not one per reconnect attempt.
                            None
                        } else {
                            self.camera_down = true;
                            self.overlay.status = format!("camera lost — door locked ({e})");
                            eprintln!("fas-edge: {e}");
                            self.events.emit(&Event::CameraLost {
                                time_ms: crate::camera::wall_ms_now(),
                                error: &e.to_string(),
                            });
                            Some(Observation::CameraLost { t_ms: t })
                        }
                    }
                    CaptureError::Corrupt { .. } => Some(Observation::BadFrame { t_ms: t }),
                    CaptureError::Timeout { .. } => {
                        // No frame: a running session times out through the policy.
                        None
                    }
                    _ => Some(Observation::CameraLost { t_ms: t }),
                };
                (obs, None)
            }
        };
        let mut outcome = None;
        if let Some(o) = &obs {
            outcome = self.policy.observe(o.clone());
        }
        if outcome.is_none() {
            let t = obs
                .as_ref()
                .map_or_else(|| self.now_ms(), Observation::t_ms);
            outcome = self.policy.tick(t);
        }
        if outcome.is_none() && !self.policy.is_running() {
            // Faces embedded while no session runs are no session's evidence.
            if let Some(g) = self.access.as_mut() {
                g.clear_faces();
            }
        }
        let outcome = match outcome {
            Some(out) => Some(self.finish(out, frame.as_ref())?),
            None => None,
        };
        if let Some(f) = &frame {
            self.show(f)?;
        }
        Ok(StepReport {
            observation: obs,
            outcome,
        })
    }

    /// Frames per second over the recent frames.
    pub fn fps(&self) -> Option<f32> {
        self.fps.value
    }

    /// The camera is lost or could not be opened (the door is locked meanwhile).
    pub fn camera_down(&self) -> bool {
        self.camera_down
    }

    fn observe(&mut self, frame: &Frame) -> Observation {
        let t_ms = millis(frame.t);
        self.overlay.fps = self.fps.tick(frame.t);
        self.overlay.status.clear();
        let faces = match self.tracker.update(frame) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("fas-edge: face detector: {e}");
                self.overlay.face = None;
                return Observation::InferenceError { t_ms };
            }
        };
        match faces.faces.as_slice() {
            [] => {
                self.overlay.face = None;
                self.overlay.score = None;
                Observation::NoFace { t_ms }
            }
            [det] => {
                let track = faces.ids.first().copied().unwrap_or(0);
                self.overlay.face = Some(face_of(det));
                if let Err(r) = quality::assess(&frame.image, det, &self.quality) {
                    self.overlay.status = r.to_string();
                    return Observation::Rejected {
                        t_ms,
                        why: r.to_string(),
                    };
                }
                let input = match self.cropper.crop(&frame.image, &face_of(det)) {
                    Ok(x) => x,
                    Err(e) => {
                        eprintln!("fas-edge: crop: {e}");
                        return Observation::BadFrame { t_ms };
                    }
                };
                let p_live = self.model.model.score(input);
                if let (Ok(_), Some(g)) = (&p_live, self.access.as_mut()) {
                    // A session's face is embedded twice: on its first scored frame and on
                    // the frame that decides it (every score of a session comes from one
                    // track, so both ends are the same face). Not outside a session, except
                    // where this very frame opens one (continuous mode, no cooldown).
                    let judged = match self.policy.progress() {
                        Some((n, need)) => n == 0 || n + 1 >= need,
                        None => {
                            self.policy.config().mode == crate::policy::Mode::Continuous
                                && !self.policy.in_cooldown(t_ms)
                                && self.policy.locked_until(t_ms).is_none()
                        }
                    };
                    if g.wants_faces() && judged {
                        if let Err(e) = g.observe_face(&frame.image, det) {
                            eprintln!("fas-edge: face embedding: {e:#}");
                            return Observation::InferenceError { t_ms };
                        }
                    }
                }
                match p_live {
                    Ok(p_live) => {
                        self.overlay.score = Some(p_live);
                        Observation::Score {
                            t_ms,
                            p_live,
                            track,
                        }
                    }
                    Err(e) => {
                        eprintln!("fas-edge: liveness model: {e}");
                        Observation::InferenceError { t_ms }
                    }
                }
            }
            many => {
                self.overlay.face = Some(face_of(&many[0]));
                Observation::MultipleFaces { t_ms }
            }
        }
    }

    /// Actuate, audit, show. The audit line is written (and synced) before the door opens.
    fn finish(&mut self, mut out: SessionOutcome, frame: Option<&Frame>) -> Result<SessionOutcome> {
        let time_ms = crate::camera::wall_ms_now();
        // The access decision over the liveness verdict: every factor the mode asks for.
        let access = self.access.as_mut().map(|g| {
            let d = g.decide(out.verdict);
            out.verdict = d.verdict;
            d.record
        });
        // When the judged face was in front of the camera (frame clock → wall clock).
        let captured_ms = match self.wall_offset_ms {
            Some(off) if out.frames_used > 0 => {
                let wall = |t: u64| (t as i64 + off).max(0) as u64;
                let last = out.ended_ms.min(millis(self.last_t)).max(out.started_ms);
                Some([wall(out.started_ms), wall(last)])
            }
            _ => None,
        };
        // The lockout's end on the wall clock, fixed when it starts so that every record
        // of one lockout names the same end.
        let lockout_until_ms = out.lockout_until_ms.map(|u| match self.lockout_wall {
            Some((policy, wall)) if policy == u => wall,
            _ => {
                let wall = time_ms + u.saturating_sub(out.ended_ms);
                self.lockout_wall = Some((u, wall));
                wall
            }
        });
        let audited = self.audit.append(&AuditEvent {
            captured_ms,
            time_ms,
            verdict: out.verdict,
            scores: out.scores.clone(),
            aggregate: out.aggregate,
            threshold: out.threshold_used,
            frames_used: out.frames_used as u32,
            model_sha256: self.model.sha256.clone(),
            lockout_until_ms,
            access: access.clone(),
        });
        let audited = match audited {
            Ok(rec) => {
                if let Some(f) = &mut self.forward {
                    f.send(&serde_json::to_string(&rec).expect("an audit record serialises"));
                }
                true
            }
            Err(e) => {
                // No decision opens the door unless it is on record. The door keeps running
                // (locked) and says so; it opens again once the log can be written.
                let error = format!("{:#}", anyhow::Error::from(e));
                eprintln!(
                    "fas-edge: ALARM: cannot write the audit log ({error}); the door stays locked — every decision is a deny until it can be written"
                );
                self.events.emit(&Event::Alarm {
                    time_ms,
                    what: "audit_log_unwritable",
                    error: &error,
                });
                out.verdict = Verdict::from_reason(Reason::InternalError);
                let _ = self.actuator.lock();
                false
            }
        };
        if let Some(u) = out
            .lockout_until_ms
            .filter(|_| out.verdict.reason != Reason::LockedOut)
        {
            eprintln!(
                "fas-edge: LOCKOUT: {} denied sessions in a row; every session is refused for {} s",
                self.policy.config().lockout_after,
                u.saturating_sub(out.ended_ms) / 1000
            );
        }
        if audited {
            if let Err(e) = self.actuator.apply(&out) {
                eprintln!(
                    "fas-edge: actuator {}: {}",
                    self.actuator.name(),
                    one_line(&e)
                );
                let _ = self.actuator.lock();
            }
        }
        let mut info = DecisionInfo::of(&out, time_ms);
        info.person = access.as_ref().and_then(|a| a.person.clone());
        self.events.emit(&Event::Decision(&info));
        self.last_decision = Some(info);
        self.overlay.verdict = Some(out.verdict);
        if let (true, Some(f)) = (matches!(self.display, Display::Png(_)), frame) {
            let shown = self.render(f)?;
            if let Display::Png(s) = &mut self.display {
                if let Err(e) = s.decision(&shown, out.verdict) {
                    eprintln!("fas-edge: snapshot: {}", one_line(&e));
                }
            }
        }
        Ok(out)
    }

    fn render(&mut self, frame: &Frame) -> Result<fas_core::preprocess::RgbImage> {
        let t = millis(frame.t);
        if let Some(u) = self.policy.locked_until(t) {
            self.overlay.status = format!(
                "LOCKED OUT - too many denied attempts ({} s left)",
                (u - t).div_ceil(1000)
            );
        }
        self.overlay.threshold = self.policy.effective_threshold(t);
        self.overlay.progress = self.policy.progress();
        let mut fb = FrameBuffer::from_frame(&frame.image).context("overlay frame")?;
        let _ = draw_overlay(&mut fb, &self.overlay);
        Ok(fb.into_image())
    }

    fn show(&mut self, frame: &Frame) -> Result<()> {
        match self.display {
            Display::None => Ok(()),
            Display::Framebuffer(_) | Display::Png(_) => {
                let img = self.render(frame)?;
                match &mut self.display {
                    Display::Framebuffer(fb) => {
                        if let Err(e) = fb.show(&img) {
                            eprintln!("fas-edge: display: {}", one_line(&e));
                        }
                    }
                    Display::Png(s) => {
                        if let Err(e) = s.frame(&img) {
                            eprintln!("fas-edge: snapshot: {}", one_line(&e));
                        }
                    }
                    Display::None => {}
                }
                Ok(())
            }
        }
    }

    /// Locks the door (shutdown, fatal error).
    pub fn lock(&mut self) {
        if let Err(e) = self.actuator.lock() {
            eprintln!(
                "fas-edge: could not confirm the door is locked: {}",
                one_line(&e)
            );
        }
    }

    /// Ends a running session with `reason` (shutdown during a session, fatal error).
    pub fn abort(&mut self, reason: Reason) -> Result<Option<SessionOutcome>> {
        let t = self.now_ms();
        match self.policy.abort(t, reason) {
            Some(out) => self.finish(out, None).map(Some),
            None => Ok(None),
        }
    }
}
