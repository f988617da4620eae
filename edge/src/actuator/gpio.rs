//! Door relay on one line of a Linux GPIO character device (`/dev/gpiochipN`), through the
//! `gpiocdev` crate (cargo feature `gpio`, on by default; Linux only).
//!
//! The line is requested as an output already at the locked level, in the same request
//! (no glitch through the unlocked level at start-up), and the request is held for the
//! life of the [`GpioRelay`]. A grant drives the unlocked level for `pulse_ms`, then the
//! locked level again; every level is read back. On drop the line is driven locked before
//! it is released.
//!
//! Levels are physical: [`Polarity`] says which level energises the relay (unlocks). Wire
//! the lock fail-secure (de-energised = locked), so a dead process, a released line or a
//! power cut all leave the door locked.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{elapsed_ms, unlocks, ActuationReport, Actuator, ActuatorError};
use crate::policy::SessionOutcome;

/// Which physical level of the line unlocks the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// High unlocks, low locks (the usual transistor-driven relay module).
    ActiveHigh,
    /// Low unlocks, high locks (opto-isolated modules with an inverting input).
    ActiveLow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorState {
    Locked,
    Unlocked,
}

impl Polarity {
    /// The physical level (`true` = high) that puts the door in `state`.
    pub fn level(self, state: DoorState) -> bool {
        match (self, state) {
            (Polarity::ActiveHigh, DoorState::Unlocked)
            | (Polarity::ActiveLow, DoorState::Locked) => true,
            (Polarity::ActiveHigh, DoorState::Locked)
            | (Polarity::ActiveLow, DoorState::Unlocked) => false,
        }
    }

    /// The door state a physical level means.
    pub fn state(self, high: bool) -> DoorState {
        if high == self.level(DoorState::Unlocked) {
            DoorState::Unlocked
        } else {
            DoorState::Locked
        }
    }
}

/// `actuator = { kind = "gpio", chip = "/dev/gpiochip0", line = 17, polarity = "active_high", pulse_ms = 3000 }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpioConfig {
    /// GPIO character device, e.g. `/dev/gpiochip0`.
    pub chip: PathBuf,
    /// Line offset on that chip (`gpioinfo` lists them).
    pub line: u32,
    pub polarity: Polarity,
    /// How long a grant releases the door, in milliseconds (1 ms … 60 s).
    #[serde(default = "default_pulse_ms")]
    pub pulse_ms: u64,
}

fn default_pulse_ms() -> u64 {
    3000
}

/// Longest unlock pulse accepted.
pub const MAX_PULSE_MS: u64 = 60_000;

impl GpioConfig {
    pub fn validate(&self) -> Result<(), ActuatorError> {
        if self.chip.as_os_str().is_empty() {
            return Err(ActuatorError::Config {
                field: "chip",
                value: String::new(),
                fix: "name the GPIO character device, e.g. /dev/gpiochip0",
            });
        }
        if self.pulse_ms == 0 || self.pulse_ms > MAX_PULSE_MS {
            return Err(ActuatorError::Config {
                field: "pulse_ms",
                value: self.pulse_ms.to_string(),
                fix: "must lie in 1..=60000 ms",
            });
        }
        Ok(())
    }
}

/// The syscall boundary: one output line, already requested.
#[cfg_attr(not(all(feature = "gpio", target_os = "linux")), allow(dead_code))]
trait Line {
    fn set(&mut self, high: bool) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
    fn get(&self) -> Result<bool, Box<dyn std::error::Error + Send + Sync>>;
}

/// Tries to re-lock after a failure this many times.
#[cfg_attr(not(all(feature = "gpio", target_os = "linux")), allow(dead_code))]
const RELOCK_ATTEMPTS: usize = 3;

/// The relay logic over any [`Line`]: levels, pulse, read-back, fail-closed error paths.
#[cfg_attr(not(all(feature = "gpio", target_os = "linux")), allow(dead_code))]
struct Relay<L: Line> {
    line: L,
    chip: PathBuf,
    offset: u32,
    polarity: Polarity,
    pulse: Duration,
}

#[cfg_attr(not(all(feature = "gpio", target_os = "linux")), allow(dead_code))]
impl<L: Line> Relay<L> {
    /// `line` must have been requested at `polarity.level(Locked)`; this checks it.
    fn new(line: L, cfg: &GpioConfig) -> Result<Self, ActuatorError> {
        let mut relay = Self {
            line,
            chip: cfg.chip.clone(),
            offset: cfg.line,
            polarity: cfg.polarity,
            pulse: Duration::from_millis(cfg.pulse_ms),
        };
        relay.verify(DoorState::Locked)?;
        Ok(relay)
    }

    fn gpio_err(
        &self,
        action: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> ActuatorError {
        ActuatorError::Gpio {
            chip: self.chip.clone(),
            offset: self.offset,
            action,
            source,
        }
    }

    fn drive(&mut self, state: DoorState) -> Result<(), ActuatorError> {
        let level = self.polarity.level(state);
        let action = match state {
            DoorState::Locked => "drive the locked level",
            DoorState::Unlocked => "drive the unlocked level",
        };
        self.line.set(level).map_err(|e| self.gpio_err(action, e))?;
        self.verify(state)
    }

    fn verify(&mut self, state: DoorState) -> Result<(), ActuatorError> {
        let expected = self.polarity.level(state);
        let found = self
            .line
            .get()
            .map_err(|e| self.gpio_err("read the line back", e))?;
        if found != expected {
            return Err(ActuatorError::GpioReadback {
                chip: self.chip.clone(),
                offset: self.offset,
                expected,
            });
        }
        Ok(())
    }

    /// Drives the locked level, retrying; returns the first error if every attempt fails.
    fn lock(&mut self) -> Result<(), ActuatorError> {
        let mut first = None;
        for _ in 0..RELOCK_ATTEMPTS {
            match self.drive(DoorState::Locked) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        Err(first.expect("RELOCK_ATTEMPTS > 0"))
    }

    /// Unlocks for the pulse, then locks. Any failure re-locks before returning it.
    fn pulse(&mut self) -> Result<(), ActuatorError> {
        if let Err(e) = self.drive(DoorState::Unlocked) {
            // Best effort; the unlock error is the one to report.
            let _ = self.lock();
            return Err(e);
        }
        thread::sleep(self.pulse);
        self.lock()
    }
}

impl<L: Line> Drop for Relay<L> {
    fn drop(&mut self) {
        // Leave the line locked before the request is released.
        let _ = self.lock();
    }
}

#[cfg(all(feature = "gpio", target_os = "linux"))]
mod cdev {
    use std::path::Path;

    use gpiocdev::line::Value;
    use gpiocdev::Request;

    /// One output line held through a `gpiocdev` request.
    pub(super) struct CdevLine {
        req: Request,
        offset: u32,
    }

    impl CdevLine {
        /// Requests `offset` on `chip` as an output already at `initial_high`, in one request.
        pub(super) fn open(
            chip: &Path,
            offset: u32,
            initial_high: bool,
        ) -> Result<Self, gpiocdev::Error> {
            let req = Request::builder()
                .on_chip(chip)
                .with_consumer("fas-edge door")
                .with_line(offset)
                .as_active_high()
                .as_output(Value::from(initial_high))
                .request()?;
            Ok(Self { req, offset })
        }
    }

    impl super::Line for CdevLine {
        fn set(&mut self, high: bool) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            Ok(self.req.set_value(self.offset, Value::from(high))?)
        }
        fn get(&self) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
            Ok(self.req.value(self.offset)? == Value::Active)
        }
    }
}

/// The door relay on a GPIO line. See the module documentation.
pub struct GpioRelay {
    #[cfg(all(feature = "gpio", target_os = "linux"))]
    relay: Relay<cdev::CdevLine>,
    #[cfg(not(all(feature = "gpio", target_os = "linux")))]
    _unconstructible: (),
}

impl GpioRelay {
    /// Requests the line at the locked level and checks it reads back locked.
    pub fn open(cfg: &GpioConfig) -> Result<Self, ActuatorError> {
        cfg.validate()?;
        #[cfg(all(feature = "gpio", target_os = "linux"))]
        {
            let locked = cfg.polarity.level(DoorState::Locked);
            let line = cdev::CdevLine::open(&cfg.chip, cfg.line, locked).map_err(|e| {
                ActuatorError::Gpio {
                    chip: cfg.chip.clone(),
                    offset: cfg.line,
                    action: "request the line as an output",
                    source: Box::new(e),
                }
            })?;
            Ok(Self {
                relay: Relay::new(line, cfg)?,
            })
        }
        #[cfg(not(all(feature = "gpio", target_os = "linux")))]
        {
            Err(ActuatorError::GpioUnavailable {
                why: if cfg!(target_os = "linux") {
                    "fas-edge was built without the `gpio` feature"
                } else {
                    "the GPIO character device exists only on Linux"
                },
            })
        }
    }
}

#[cfg(all(feature = "gpio", target_os = "linux"))]
impl Actuator for GpioRelay {
    fn name(&self) -> &'static str {
        "gpio"
    }

    fn apply(&mut self, outcome: &SessionOutcome) -> Result<ActuationReport, ActuatorError> {
        apply_relay(&mut self.relay, outcome)
    }

    fn lock(&mut self) -> Result<(), ActuatorError> {
        self.relay.lock()
    }
}

#[cfg(not(all(feature = "gpio", target_os = "linux")))]
impl Actuator for GpioRelay {
    fn name(&self) -> &'static str {
        "gpio"
    }
    // `open` never returns a relay in this build; these only keep the trait total.
    fn apply(&mut self, _: &SessionOutcome) -> Result<ActuationReport, ActuatorError> {
        Err(ActuatorError::GpioUnavailable {
            why: "fas-edge was built without GPIO support",
        })
    }
    fn lock(&mut self) -> Result<(), ActuatorError> {
        Err(ActuatorError::GpioUnavailable {
            why: "fas-edge was built without GPIO support",
        })
    }
}

#[cfg_attr(not(all(feature = "gpio", target_os = "linux")), allow(dead_code))]
fn apply_relay<L: Line>(
    relay: &mut Relay<L>,
    outcome: &SessionOutcome,
) -> Result<ActuationReport, ActuatorError> {
    let start = Instant::now();
    let unlocked = unlocks(outcome);
    if unlocked {
        relay.pulse()?;
    } else {
        // Not a grant: make sure it is locked (it should already be).
        relay.lock()?;
    }
    Ok(ActuationReport {
        actuator: "gpio",
        decision: outcome.verdict.decision,
        unlocked,
        elapsed_ms: elapsed_ms(start),
        detail: if unlocked {
            format!(
                "{} line {}: unlocked for {} ms, locked again",
                relay.chip.display(),
                relay.offset,
                relay.pulse.as_millis()
            )
        } else {
            format!(
                "{} line {}: kept locked",
                relay.chip.display(),
                relay.offset
            )
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actuator::tests::outcome;
    use fas_core::decision::Reason;
    use std::sync::{Arc, Mutex};

    /// An in-memory line standing in for the kernel (no gpio-sim on this host): records
    /// every level driven with its time, and can be told to fail or to stick.
    #[derive(Clone, Default)]
    struct FakeLine(Arc<Mutex<FakeState>>);

    #[derive(Default)]
    struct FakeState {
        level: bool,
        log: Vec<(Instant, bool)>,
        fail_sets: usize,
        fail_set_to: Option<bool>,
        stuck: Option<bool>,
    }

    impl FakeLine {
        fn requested_at(level: bool) -> Self {
            let f = FakeLine::default();
            f.0.lock().unwrap().level = level;
            f
        }
        fn levels(&self) -> Vec<bool> {
            self.0.lock().unwrap().log.iter().map(|e| e.1).collect()
        }
        fn level(&self) -> bool {
            self.0.lock().unwrap().level
        }
    }

    impl Line for FakeLine {
        fn set(&mut self, high: bool) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let mut s = self.0.lock().unwrap();
            if s.fail_sets > 0 && s.fail_set_to.is_none_or(|l| l == high) {
                s.fail_sets -= 1;
                return Err("EIO".into());
            }
            s.log.push((Instant::now(), high));
            s.level = s.stuck.unwrap_or(high);
            Ok(())
        }
        fn get(&self) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
            Ok(self.0.lock().unwrap().level)
        }
    }

    fn cfg(polarity: Polarity, pulse_ms: u64) -> GpioConfig {
        GpioConfig {
            chip: "/dev/gpiochip0".into(),
            line: 4,
            polarity,
            pulse_ms,
        }
    }

    #[test]
    fn polarity_levels() {
        use DoorState::*;
        assert!(!Polarity::ActiveHigh.level(Locked));
        assert!(Polarity::ActiveHigh.level(Unlocked));
        assert!(Polarity::ActiveLow.level(Locked));
        assert!(!Polarity::ActiveLow.level(Unlocked));
        for p in [Polarity::ActiveHigh, Polarity::ActiveLow] {
            for s in [Locked, Unlocked] {
                assert_eq!(p.state(p.level(s)), s);
            }
            assert_ne!(p.level(Locked), p.level(Unlocked));
        }
    }

    #[test]
    fn grant_pulses_for_pulse_ms_then_locks() {
        for polarity in [Polarity::ActiveHigh, Polarity::ActiveLow] {
            let locked = polarity.level(DoorState::Locked);
            let line = FakeLine::requested_at(locked);
            let mut relay = Relay::new(line.clone(), &cfg(polarity, 30)).unwrap();
            let rep = apply_relay(&mut relay, &outcome(Reason::AboveThreshold)).unwrap();
            assert!(rep.unlocked);
            assert_eq!(line.levels(), vec![!locked, locked]);
            let log = line.0.lock().unwrap().log.clone();
            assert!(log[1].0 - log[0].0 >= Duration::from_millis(30));
            assert!(rep.elapsed_ms >= 30);
            assert_eq!(line.level(), locked);
        }
    }

    #[test]
    fn nothing_but_grant_unlocks() {
        for r in Reason::ALL
            .into_iter()
            .filter(|&r| r.decision() != fas_core::decision::Decision::Grant)
        {
            let line = FakeLine::requested_at(false);
            let mut relay = Relay::new(line.clone(), &cfg(Polarity::ActiveHigh, 1)).unwrap();
            let rep = apply_relay(&mut relay, &outcome(r)).unwrap();
            assert!(!rep.unlocked);
            assert!(
                line.levels().iter().all(|&l| !l),
                "{r:?} drove {:?}",
                line.levels()
            );
        }
    }

    #[test]
    fn refuses_a_line_not_at_the_locked_level() {
        let line = FakeLine::requested_at(true);
        let e = Relay::new(line, &cfg(Polarity::ActiveHigh, 1))
            .err()
            .unwrap();
        assert!(
            matches!(
                e,
                ActuatorError::GpioReadback {
                    expected: false,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn failed_unlock_leaves_it_locked() {
        let line = FakeLine::requested_at(true);
        let mut relay = Relay::new(line.clone(), &cfg(Polarity::ActiveLow, 1)).unwrap();
        {
            let mut s = line.0.lock().unwrap();
            s.fail_sets = 1;
            s.fail_set_to = Some(false); // the unlock level fails once
        }
        let e = apply_relay(&mut relay, &outcome(Reason::AboveThreshold)).unwrap_err();
        assert!(
            matches!(
                e,
                ActuatorError::Gpio {
                    action: "drive the unlocked level",
                    ..
                }
            ),
            "{e}"
        );
        assert!(line.level(), "locked (high) after the error");
    }

    #[test]
    fn stuck_line_is_reported_and_relocked() {
        let line = FakeLine::requested_at(false);
        let mut relay = Relay::new(line.clone(), &cfg(Polarity::ActiveHigh, 1)).unwrap();
        line.0.lock().unwrap().stuck = Some(false); // never goes high
        let e = apply_relay(&mut relay, &outcome(Reason::AboveThreshold)).unwrap_err();
        assert!(
            matches!(e, ActuatorError::GpioReadback { expected: true, .. }),
            "{e}"
        );
        assert_eq!(line.levels().last(), Some(&false));
    }

    #[test]
    fn relock_retries_then_reports() {
        let line = FakeLine::requested_at(false);
        let mut relay = Relay::new(line.clone(), &cfg(Polarity::ActiveHigh, 1)).unwrap();
        line.0.lock().unwrap().fail_sets = 2; // two failures, third attempt succeeds
        relay.lock().unwrap();
        line.0.lock().unwrap().fail_sets = RELOCK_ATTEMPTS;
        assert!(relay.lock().is_err());
    }

    #[test]
    fn drop_drives_locked() {
        let line = FakeLine::requested_at(true);
        let relay = Relay::new(line.clone(), &cfg(Polarity::ActiveLow, 1)).unwrap();
        line.0.lock().unwrap().level = false; // something flipped it
        drop(relay);
        assert!(line.level());
        assert_eq!(line.levels(), vec![true]);
    }

    #[test]
    fn config_is_validated() {
        let mut c = cfg(Polarity::ActiveHigh, 0);
        assert!(matches!(
            c.validate(),
            Err(ActuatorError::Config {
                field: "pulse_ms",
                ..
            })
        ));
        c.pulse_ms = MAX_PULSE_MS + 1;
        assert!(c.validate().is_err());
        c.pulse_ms = 100;
        c.chip = PathBuf::new();
        assert!(matches!(
            c.validate(),
            Err(ActuatorError::Config { field: "chip", .. })
        ));
    }

    /// On this host there is no GPIO chip: opening one must fail with an error naming it
    /// (or, without the feature, saying the feature is off) — never succeed silently.
    #[test]
    fn open_without_a_chip_fails_clearly() {
        let mut c = cfg(Polarity::ActiveHigh, 100);
        c.chip = "/nonexistent/gpiochip9".into();
        let e = GpioRelay::open(&c).err().expect("no such chip");
        let msg = e.to_string();
        if cfg!(feature = "gpio") {
            assert!(
                msg.contains("/nonexistent/gpiochip9") && msg.contains("line 4"),
                "{msg}"
            );
        } else {
            assert!(matches!(e, ActuatorError::GpioUnavailable { .. }), "{msg}");
        }
    }
}
