//! The multi-frame door policy (ARCHITECTURE.md contract 6): a session collects per-frame
//! [`Observation`]s and ends in exactly one [`SessionOutcome`].
//!
//! # How a session ends
//!
//! | what happens in the session | verdict |
//! |---|---|
//! | `frames` good scores collected, aggregate ≥ the session's threshold | `Grant` / `AboveThreshold` |
//! | `frames` good scores collected, aggregate < the session's threshold | `Deny` / `BelowThreshold` |
//! | a `BadFrame` observation | `Deny` / `BadFrame` |
//! | an `InferenceError` observation, or a score that is not finite or outside `[0, 1]` | `Deny` / `InferenceError` |
//! | a `CameraLost` observation | `Deny` / `CameraLost` |
//! | time runs backwards inside a session | `Deny` / `InternalError` |
//! | `MultipleFaces` with [`MultipleFaces::Abort`] | `NoDecision` / `MultipleFaces` |
//! | a score from another track than the session's first score | `NoDecision` / `FaceChanged` |
//! | window ends, no observation arrived at all | `NoDecision` / `Timeout` |
//! | window ends, observations arrived but none showed a face | `NoDecision` / `NoFace` |
//! | window ends, faces were seen but fewer than `frames` good scores | `NoDecision` / `NotEnoughFrames` |
//! | [`Policy::start`] during the cooldown | `NoDecision` / `Cooldown` (no session is opened) |
//!
//! The window is `[started_ms, started_ms + window_ms)`: an observation stamped at or after
//! its end is not counted; it ends the session by timeout instead. A `Grant` is only ever
//! made by [`Verdict::from_score`] on the aggregate of exactly `frames` finite scores in
//! `[0, 1]`; every other path fails closed.
//!
//! # Cooldown
//!
//! After any decision (every session end, including faults), no new session starts for
//! `cooldown_ms`: [`Policy::start`] answers `NoDecision` / `Cooldown` without opening one,
//! and in continuous mode observations are ignored. A cooldown refusal is not itself a
//! decision: it does not extend the cooldown nor touch the hysteresis.
//!
//! # Hysteresis
//!
//! A session ending in `Deny` (for any reason, faults included) *raises the bar*: sessions
//! started while the bar is raised need an aggregate ≥ `threshold + hysteresis` to grant.
//! The bar drops back to `threshold` as soon as either
//! - a session ends without a `Deny` (a `Grant` — necessarily at the raised bar — or any
//!   `NoDecision` other than a cooldown refusal), or
//! - `hysteresis_ms` have passed since the `Deny` that raised it (so `hysteresis_ms = 0`
//!   disables the raise).
//!
//! A session's threshold is fixed when it starts and reported as
//! [`SessionOutcome::threshold_used`].
//!
//! # Lockout
//!
//! After `lockout_after` sessions in a row ended `Deny` / `BelowThreshold` (the model said
//! "not live": someone trying photos or screens), the door locks out for `lockout_ms`: the
//! outcome that triggers it carries [`SessionOutcome::lockout_until_ms`], and until then
//! every session request ([`Policy::start`], or in continuous mode a face outside the
//! cooldown) ends at once as `Deny` / `LockedOut` — audited like any decision, shown on the
//! overlay, and throttled by the cooldown so a waiting face is not logged every frame. A
//! `Grant` resets the count; faults and `NoDecision`s neither count nor reset it.
//! `lockout_after = 0` disables the lockout.
//!
//! # Modes
//!
//! In [`Mode::Triggered`] a session opens only on [`Policy::start`] (a button, a badge, an
//! API call); observations while idle are ignored. In [`Mode::Continuous`] a session also
//! opens by itself at the first observation outside the cooldown that shows a face or a
//! fault (`NoFace` alone never opens one, so an empty corridor writes no decisions).
//!
//! Time is a caller-supplied monotonic millisecond clock (`t_ms`); call [`Policy::tick`]
//! when no frames arrive so a stalled camera still ends the session.

use serde::{Deserialize, Serialize};

use fas_core::decision::{Decision, Reason, Verdict};

/// How the per-frame `p_live` scores of a session are combined into one number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Aggregate {
    /// Arithmetic mean.
    Mean,
    /// Middle value; the mean of the two middle values for an even count.
    Median,
    /// Mean after dropping `floor(fraction · n)` scores from each end of the sorted list;
    /// `fraction ∈ [0, 0.5)`, so at least one score always remains. `fraction = 0` is the mean.
    Trimmed { fraction: f32 },
}

impl Aggregate {
    /// The aggregate of `scores`, or `None` when `scores` is empty or holds a non-finite
    /// value (or the trim fraction is invalid). The result lies within `[min, max]` of `scores`.
    pub fn apply(&self, scores: &[f32]) -> Option<f32> {
        if scores.is_empty() || scores.iter().any(|s| !s.is_finite()) {
            return None;
        }
        let mut sorted = scores.to_vec();
        sorted.sort_by(f32::total_cmp);
        let n = sorted.len();
        match *self {
            Aggregate::Mean => Some(mean(&sorted)),
            Aggregate::Median => Some(if n % 2 == 1 {
                sorted[n / 2]
            } else {
                ((f64::from(sorted[n / 2 - 1]) + f64::from(sorted[n / 2])) / 2.0) as f32
            }),
            Aggregate::Trimmed { fraction } => {
                if !(0.0..0.5).contains(&fraction) {
                    return None;
                }
                let k = (f64::from(fraction) * n as f64).floor() as usize;
                // 2k ≤ 2·fraction·n < n, so the slice is never empty.
                Some(mean(&sorted[k..n - k]))
            }
        }
    }
}

fn mean(xs: &[f32]) -> f32 {
    (xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64) as f32
}

/// When sessions open: see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Triggered,
    Continuous,
}

/// What a frame showing more than one face does to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MultipleFaces {
    /// End the session at once as `NoDecision` / `MultipleFaces` (anti-tailgating).
    Abort,
    /// Skip the frame: it does not count towards `frames`.
    SkipFrame,
}

/// What opened a session; recorded in its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// [`Policy::start`] was called (button, badge reader, API).
    External,
    /// Continuous mode opened the session at an observation.
    Auto,
}

/// Policy settings; check them with [`PolicyConfig::validate`] (done by [`Policy::new`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default = "defaults::mode")]
    pub mode: Mode,
    /// N: good (scored) frames needed for a decision.
    #[serde(default = "defaults::frames")]
    pub frames: usize,
    /// T: how long a session may collect frames, in milliseconds.
    #[serde(default = "defaults::window_ms")]
    pub window_ms: u64,
    #[serde(default = "defaults::aggregate")]
    pub aggregate: Aggregate,
    /// Operating threshold on the aggregate `p_live`, in `(0, 1]`.
    pub threshold: f32,
    /// Added to `threshold` while the bar is raised after a `Deny`; `threshold + hysteresis ≤ 1`.
    #[serde(default = "defaults::hysteresis")]
    pub hysteresis: f32,
    /// How long a raised bar lasts at most, in milliseconds (0 disables the raise).
    #[serde(default = "defaults::hysteresis_ms")]
    pub hysteresis_ms: u64,
    /// No new session for this long after any decision, in milliseconds.
    #[serde(default = "defaults::cooldown_ms")]
    pub cooldown_ms: u64,
    #[serde(default = "defaults::multiple_faces")]
    pub multiple_faces: MultipleFaces,
    /// Consecutive `BelowThreshold` denials that start a lockout (0: never).
    #[serde(default = "defaults::lockout_after")]
    pub lockout_after: u32,
    /// How long a lockout lasts, in milliseconds.
    #[serde(default = "defaults::lockout_ms")]
    pub lockout_ms: u64,
}

mod defaults {
    use super::{Aggregate, Mode, MultipleFaces};
    pub fn mode() -> Mode {
        Mode::Triggered
    }
    pub fn frames() -> usize {
        5
    }
    pub fn window_ms() -> u64 {
        3000
    }
    pub fn aggregate() -> Aggregate {
        Aggregate::Median
    }
    pub fn hysteresis() -> f32 {
        0.05
    }
    pub fn hysteresis_ms() -> u64 {
        30_000
    }
    pub fn cooldown_ms() -> u64 {
        2000
    }
    pub fn multiple_faces() -> MultipleFaces {
        MultipleFaces::Abort
    }
    pub fn lockout_after() -> u32 {
        5
    }
    pub fn lockout_ms() -> u64 {
        60_000
    }
}

impl PolicyConfig {
    /// The documented defaults with the given operating threshold (usually one of the
    /// bundle's recommended thresholds).
    pub fn with_threshold(threshold: f32) -> Self {
        Self {
            mode: defaults::mode(),
            frames: defaults::frames(),
            window_ms: defaults::window_ms(),
            aggregate: defaults::aggregate(),
            threshold,
            hysteresis: defaults::hysteresis(),
            hysteresis_ms: defaults::hysteresis_ms(),
            cooldown_ms: defaults::cooldown_ms(),
            multiple_faces: defaults::multiple_faces(),
            lockout_after: defaults::lockout_after(),
            lockout_ms: defaults::lockout_ms(),
        }
    }

    /// Errors name the first offending field, its value and how to fix it.
    pub fn validate(&self) -> Result<(), PolicyConfigError> {
        let err = |field: &'static str, value: String, fix: &'static str| {
            Err(PolicyConfigError { field, value, fix })
        };
        if self.frames == 0 {
            return err(
                "frames",
                "0".into(),
                "needs at least 1 scored frame per decision",
            );
        }
        if self.window_ms == 0 {
            return err(
                "window_ms",
                "0".into(),
                "give the session time to collect frames, e.g. 3000",
            );
        }
        if !self.threshold.is_finite() || self.threshold <= 0.0 || self.threshold > 1.0 {
            return err(
                "threshold",
                self.threshold.to_string(),
                "must lie in (0, 1]; 0 would grant every face — use a threshold from the bundle",
            );
        }
        if !self.hysteresis.is_finite() || self.hysteresis < 0.0 {
            return err(
                "hysteresis",
                self.hysteresis.to_string(),
                "must be finite and ≥ 0",
            );
        }
        if self.threshold + self.hysteresis > 1.0 {
            return err(
                "hysteresis",
                self.hysteresis.to_string(),
                "threshold + hysteresis must not exceed 1, or nobody could be granted after a deny",
            );
        }
        if self.lockout_after > 0 && self.lockout_ms == 0 {
            return err(
                "lockout_ms",
                "0".into(),
                "a lockout needs a duration, e.g. 60000; or set lockout_after = 0 to disable it",
            );
        }
        if let Aggregate::Trimmed { fraction } = self.aggregate {
            if !(0.0..0.5).contains(&fraction) {
                return err(
                    "aggregate.trimmed.fraction",
                    fraction.to_string(),
                    "must lie in [0, 0.5) so at least one score remains",
                );
            }
        }
        Ok(())
    }
}

/// A [`PolicyConfig`] field that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("policy.{field} = {value}: {fix}")]
pub struct PolicyConfigError {
    pub field: &'static str,
    pub value: String,
    pub fix: &'static str,
}

/// What the pipeline saw in one frame (or instead of one).
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// One face passed the quality gates and was scored. `track` is its tracker id
    /// ([`crate::track::Faces::ids`]): every score of one session must share it.
    Score { t_ms: u64, p_live: f32, track: u64 },
    /// The frame held no face.
    NoFace { t_ms: u64 },
    /// The frame held more faces than policy allows.
    MultipleFaces { t_ms: u64 },
    /// A face was found but a quality gate rejected it (blur, size, pose …).
    Rejected { t_ms: u64, why: String },
    /// The frame could not be decoded or had the wrong size/format (fault).
    BadFrame { t_ms: u64 },
    /// The detector or liveness model failed (fault).
    InferenceError { t_ms: u64 },
    /// The camera disappeared or stopped delivering frames (fault).
    CameraLost { t_ms: u64 },
}

impl Observation {
    pub fn t_ms(&self) -> u64 {
        match *self {
            Observation::Score { t_ms, .. }
            | Observation::NoFace { t_ms }
            | Observation::MultipleFaces { t_ms }
            | Observation::Rejected { t_ms, .. }
            | Observation::BadFrame { t_ms }
            | Observation::InferenceError { t_ms }
            | Observation::CameraLost { t_ms } => t_ms,
        }
    }

    /// The fault this observation reports, if it is one (a bad score counts as an
    /// inference error).
    pub fn fault(&self) -> Option<Reason> {
        match *self {
            Observation::Score { p_live, .. } if !valid_score(p_live) => {
                Some(Reason::InferenceError)
            }
            Observation::BadFrame { .. } => Some(Reason::BadFrame),
            Observation::InferenceError { .. } => Some(Reason::InferenceError),
            Observation::CameraLost { .. } => Some(Reason::CameraLost),
            _ => None,
        }
    }
}

fn valid_score(p: f32) -> bool {
    p.is_finite() && (0.0..=1.0).contains(&p)
}

/// How one session ended. `verdict` is always consistent ([`Verdict::is_consistent`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionOutcome {
    pub verdict: Verdict,
    /// The aggregate that was compared with `threshold_used`; `None` when the session ended
    /// before `frames` good scores were collected.
    pub aggregate: Option<f32>,
    /// Every good score collected, in arrival order (never a non-finite value).
    pub scores: Vec<f32>,
    /// `scores.len()`.
    pub frames_used: usize,
    /// Frames whose face a quality gate rejected.
    pub frames_rejected: usize,
    /// The last quality-gate rejection, for the display and the log.
    pub last_rejection: Option<String>,
    /// The bar this session had to clear (`threshold`, or `threshold + hysteresis`).
    pub threshold_used: f32,
    pub trigger: Trigger,
    pub started_ms: u64,
    pub ended_ms: u64,
    /// Set when this outcome started a lockout, or was refused by one: sessions are refused
    /// until this time (policy clock).
    pub lockout_until_ms: Option<u64>,
}

impl SessionOutcome {
    pub fn decision(&self) -> Decision {
        self.verdict.decision
    }
}

#[derive(Debug, Clone)]
struct Session {
    trigger: Trigger,
    started_ms: u64,
    threshold: f32,
    scores: Vec<f32>,
    observations: usize,
    faces_seen: bool,
    rejected: usize,
    last_rejection: Option<String>,
    /// The track every score of this session came from (set by the first score).
    track: Option<u64>,
}

/// The policy state machine: at most one session at a time. See the module documentation.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
    session: Option<Session>,
    last_t: Option<u64>,
    /// Sessions may start again at this time.
    cooldown_until: u64,
    /// Time of the `Deny` that raised the bar, while it is raised.
    raised_at: Option<u64>,
    /// `BelowThreshold` denials since the last `Grant` or lockout.
    denials: u32,
    /// Sessions are refused until this time.
    locked_until: Option<u64>,
}

impl Policy {
    /// Validates `config` so a bad setting stops the door at start-up, not at a decision.
    pub fn new(config: PolicyConfig) -> Result<Self, PolicyConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            session: None,
            last_t: None,
            cooldown_until: 0,
            raised_at: None,
            denials: 0,
            locked_until: None,
        })
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    pub fn is_running(&self) -> bool {
        self.session.is_some()
    }

    /// Good frames collected so far and the number needed, while a session runs.
    pub fn progress(&self) -> Option<(usize, usize)> {
        self.session
            .as_ref()
            .map(|s| (s.scores.len(), self.config.frames))
    }

    /// True while a new session would be refused.
    pub fn in_cooldown(&self, t_ms: u64) -> bool {
        t_ms < self.cooldown_until
    }

    /// The end of the lockout, while one is in force at `t_ms`.
    pub fn locked_until(&self, t_ms: u64) -> Option<u64> {
        self.locked_until.filter(|&u| t_ms < u)
    }

    /// A session refused by the lockout (not a session: no cooldown, hysteresis or count
    /// change).
    fn refused(&self, t_ms: u64, reason: Reason, trigger: Trigger) -> SessionOutcome {
        SessionOutcome {
            verdict: Verdict::from_reason(reason),
            aggregate: None,
            scores: Vec::new(),
            frames_used: 0,
            frames_rejected: 0,
            last_rejection: None,
            threshold_used: self.effective_threshold(t_ms),
            trigger,
            started_ms: t_ms,
            ended_ms: t_ms,
            lockout_until_ms: self.locked_until(t_ms),
        }
    }

    /// The bar a session started at `t_ms` would have to clear.
    pub fn effective_threshold(&self, t_ms: u64) -> f32 {
        match self.raised_at {
            Some(at) if t_ms < at.saturating_add(self.config.hysteresis_ms) => {
                self.config.threshold + self.config.hysteresis
            }
            _ => self.config.threshold,
        }
    }

    /// Asks for a session at `t_ms`. Returns `Some(NoDecision / Cooldown)` when refused
    /// during the cooldown, `None` when a session was opened or one is already running
    /// (the trigger joins it). A clock running backwards ends a running session as
    /// `Deny` / `InternalError`.
    pub fn start(&mut self, t_ms: u64, trigger: Trigger) -> Option<SessionOutcome> {
        if let Some(out) = self.clock(t_ms) {
            return Some(out);
        }
        if self.session.is_some() {
            return None;
        }
        if self.locked_until(t_ms).is_some() {
            return Some(self.refused(t_ms, Reason::LockedOut, trigger));
        }
        if self.in_cooldown(t_ms) {
            return Some(self.refused(t_ms, Reason::Cooldown, trigger));
        }
        self.open(t_ms, trigger);
        None
    }

    /// Feeds one observation; returns the outcome when it ends the session.
    pub fn observe(&mut self, obs: Observation) -> Option<SessionOutcome> {
        let t = obs.t_ms();
        if let Some(out) = self.clock(t) {
            return Some(out);
        }
        if let Some(out) = self.check_deadline(t) {
            return Some(out);
        }
        if self.session.is_none() {
            let opens = self.config.mode == Mode::Continuous
                && !self.in_cooldown(t)
                && !matches!(obs, Observation::NoFace { .. });
            if !opens {
                return None;
            }
            if self.locked_until(t).is_some() {
                // Refused, once per cooldown, so a waiting face is not logged every frame.
                self.cooldown_until = t.saturating_add(self.config.cooldown_ms);
                return Some(self.refused(t, Reason::LockedOut, Trigger::Auto));
            }
            self.open(t, Trigger::Auto);
        }
        if let Some(reason) = obs.fault() {
            return Some(self.end(t, Verdict::from_reason(reason), None));
        }
        let frames = self.config.frames;
        let multiple = self.config.multiple_faces;
        let s = self.session.as_mut()?;
        s.observations += 1;
        match obs {
            Observation::Score { p_live, track, .. } => {
                s.faces_seen = true;
                if *s.track.get_or_insert(track) != track {
                    // Another face took the place of the one being judged: its frames
                    // must not be averaged with the first one's.
                    return Some(self.end(t, Verdict::from_reason(Reason::FaceChanged), None));
                }
                s.scores.push(p_live);
                if s.scores.len() >= frames {
                    return Some(self.decide(t));
                }
            }
            Observation::NoFace { .. } => {}
            Observation::MultipleFaces { .. } => {
                s.faces_seen = true;
                if multiple == MultipleFaces::Abort {
                    return Some(self.end(t, Verdict::from_reason(Reason::MultipleFaces), None));
                }
            }
            Observation::Rejected { why, .. } => {
                s.faces_seen = true;
                s.rejected += 1;
                s.last_rejection = Some(why);
            }
            // Faults were handled above.
            Observation::BadFrame { .. }
            | Observation::InferenceError { .. }
            | Observation::CameraLost { .. } => {
                return Some(self.end(t, Verdict::from_reason(Reason::InternalError), None))
            }
        }
        None
    }

    /// A request refused before any face was judged — an unknown or unreadable credential
    /// (`reason`, a `Deny`). It counts toward the lockout like a liveness denial (someone
    /// trying card numbers), and during a lockout it is refused as `LockedOut`. It opens
    /// no session and starts no cooldown.
    pub fn refuse(&mut self, t_ms: u64, reason: Reason) -> SessionOutcome {
        let t = t_ms.max(self.last_t.unwrap_or(0));
        if self.locked_until(t).is_some() {
            return self.refused(t, Reason::LockedOut, Trigger::External);
        }
        let reason = if reason.decision() == Decision::Deny {
            reason
        } else {
            Reason::InternalError
        };
        let mut out = self.refused(t, reason, Trigger::External);
        if self.config.lockout_after > 0 {
            self.denials += 1;
            if self.denials >= self.config.lockout_after {
                self.denials = 0;
                let until = t.saturating_add(self.config.lockout_ms);
                self.locked_until = Some(until);
                out.lockout_until_ms = Some(until);
            }
        }
        out
    }

    /// Advances the clock without a frame: ends a session whose window has run out.
    pub fn tick(&mut self, t_ms: u64) -> Option<SessionOutcome> {
        if let Some(out) = self.clock(t_ms) {
            return Some(out);
        }
        self.check_deadline(t_ms)
    }

    /// Ends a running session now as `Deny` with `reason` (a fault the pipeline found
    /// outside the observations, e.g. the actuator or the audit log failed). `reason` must
    /// be a fault; anything else is recorded as `InternalError`.
    pub fn abort(&mut self, t_ms: u64, reason: Reason) -> Option<SessionOutcome> {
        let reason = if reason.is_fault() {
            reason
        } else {
            Reason::InternalError
        };
        self.session.as_ref()?;
        let t = t_ms.max(self.last_t.unwrap_or(0));
        self.last_t = Some(t);
        Some(self.end(t, Verdict::from_reason(reason), None))
    }

    /// Records `t` as the latest time; a backwards step ends a running session.
    fn clock(&mut self, t: u64) -> Option<SessionOutcome> {
        let last = self.last_t.unwrap_or(0);
        if t < last {
            // Keep the later time so the cooldown cannot be shortened by a bad clock.
            if self.session.is_some() {
                return Some(self.end(last, Verdict::from_reason(Reason::InternalError), None));
            }
            return None;
        }
        self.last_t = Some(t);
        None
    }

    fn check_deadline(&mut self, t: u64) -> Option<SessionOutcome> {
        let s = self.session.as_ref()?;
        if t < s.started_ms.saturating_add(self.config.window_ms) {
            return None;
        }
        let reason = if s.observations == 0 {
            Reason::Timeout
        } else if !s.faces_seen {
            Reason::NoFace
        } else {
            Reason::NotEnoughFrames
        };
        Some(self.end(t, Verdict::from_reason(reason), None))
    }

    fn open(&mut self, t: u64, trigger: Trigger) {
        self.session = Some(Session {
            trigger,
            started_ms: t,
            threshold: self.effective_threshold(t),
            scores: Vec::with_capacity(self.config.frames),
            observations: 0,
            faces_seen: false,
            rejected: 0,
            last_rejection: None,
            track: None,
        });
    }

    fn decide(&mut self, t: u64) -> SessionOutcome {
        let Some(s) = self.session.as_ref() else {
            return self.end(t, Verdict::from_reason(Reason::InternalError), None);
        };
        match self.config.aggregate.apply(&s.scores) {
            Some(agg) => {
                let verdict = Verdict::from_score(agg, s.threshold);
                self.end(t, verdict, Some(agg))
            }
            None => self.end(t, Verdict::from_reason(Reason::InternalError), None),
        }
    }

    /// Closes the session (a pseudo-session if none runs), starts the cooldown and
    /// updates the hysteresis.
    fn end(&mut self, t: u64, verdict: Verdict, aggregate: Option<f32>) -> SessionOutcome {
        let s = self.session.take().unwrap_or_else(|| Session {
            trigger: Trigger::External,
            started_ms: t,
            threshold: self.effective_threshold(t),
            scores: Vec::new(),
            observations: 0,
            faces_seen: false,
            rejected: 0,
            last_rejection: None,
            track: None,
        });
        self.cooldown_until = t.saturating_add(self.config.cooldown_ms);
        self.raised_at = match verdict.decision {
            Decision::Deny => Some(t),
            Decision::Grant | Decision::NoDecision => None,
        };
        let mut lockout_until_ms = None;
        match verdict.reason {
            Reason::AboveThreshold => self.denials = 0,
            Reason::BelowThreshold if self.config.lockout_after > 0 => {
                self.denials += 1;
                if self.denials >= self.config.lockout_after {
                    self.denials = 0;
                    let until = t.saturating_add(self.config.lockout_ms);
                    self.locked_until = Some(until);
                    lockout_until_ms = Some(until);
                }
            }
            _ => {}
        }
        SessionOutcome {
            lockout_until_ms,
            verdict,
            aggregate,
            frames_used: s.scores.len(),
            scores: s.scores,
            frames_rejected: s.rejected,
            last_rejection: s.last_rejection,
            threshold_used: s.threshold,
            trigger: s.trigger,
            started_ms: s.started_ms,
            ended_ms: t,
        }
    }
}

#[cfg(test)]
mod tests;
