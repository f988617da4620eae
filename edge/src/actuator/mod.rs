//! Door actuators: what a finished session does to the door.
//!
//! Three back-ends share the [`Actuator`] trait: a relay on a GPIO line ([`gpio`]), an
//! external program ([`command`]) and a log-only sink ([`none`]) for CI and dry runs.
//! [`ActuatorConfig::build`] makes the configured one.

pub mod command;
pub mod gpio;
pub mod none;

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

use serde::{Deserialize, Serialize};

use fas_core::decision::{Decision, Reason};

use crate::policy::SessionOutcome;

pub use command::{CommandActuator, CommandConfig, CommandMessage};
pub use gpio::{DoorState, GpioConfig, GpioRelay, Polarity};
pub use none::LogOnly;

/// Acts on door decisions.
///
/// # Contract
///
/// - Only a `Grant` ever unlocks, and only one whose reason is `AboveThreshold` (the
///   `presence` mode) or `Verified` (every access factor passed) ([`unlocks`]); `Deny`, `NoDecision` and an inconsistent verdict leave the door locked.
/// - An unlock is a pulse: the door is released for the configured `pulse_ms`, then locked
///   again before [`apply`](Actuator::apply) returns (so `apply` blocks for the pulse;
///   run it off the capture thread).
/// - The door starts locked when the actuator is built, is locked again on every error
///   path, and is left locked when the actuator is dropped.
/// - [`lock`](Actuator::lock) forces the locked state now (start-up, faults, shutdown).
pub trait Actuator {
    /// Short name for logs and the audit trail (`"gpio"`, `"command"`, `"none"`).
    fn name(&self) -> &'static str;

    /// Acts on one finished session (see the contract above).
    fn apply(&mut self, outcome: &SessionOutcome) -> Result<ActuationReport, ActuatorError>;

    /// Locks the door now.
    fn lock(&mut self) -> Result<(), ActuatorError>;
}

impl<A: Actuator + ?Sized> Actuator for Box<A> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn apply(&mut self, outcome: &SessionOutcome) -> Result<ActuationReport, ActuatorError> {
        (**self).apply(outcome)
    }
    fn lock(&mut self) -> Result<(), ActuatorError> {
        (**self).lock()
    }
}

/// The single gate every actuator uses: true only for a consistent `Grant` with a
/// granting reason (`AboveThreshold` or `Verified`).
pub fn unlocks(outcome: &SessionOutcome) -> bool {
    outcome.verdict.decision == Decision::Grant
        && matches!(
            outcome.verdict.reason,
            Reason::AboveThreshold | Reason::Verified
        )
        && outcome.verdict.is_consistent()
}

/// What an actuator did with one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActuationReport {
    pub actuator: &'static str,
    pub decision: Decision,
    /// True when the door was released (a pulse was driven, or the program ran for a grant
    /// and exited successfully).
    pub unlocked: bool,
    /// Wall time `apply` took, in milliseconds (includes the pulse).
    pub elapsed_ms: u64,
    /// One line for the log.
    pub detail: String,
}

/// Which actuator to build, as read from the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActuatorConfig {
    /// Log decisions to standard error only.
    None,
    Gpio(GpioConfig),
    Command(CommandConfig),
}

impl ActuatorConfig {
    /// The checks `build` makes before touching any device.
    pub fn validate(&self) -> Result<(), ActuatorError> {
        match self {
            ActuatorConfig::None => Ok(()),
            ActuatorConfig::Gpio(c) => c.validate(),
            ActuatorConfig::Command(c) => c.validate(),
        }
    }

    /// Validates and builds the actuator; the door is locked when this returns `Ok`.
    pub fn build(&self) -> Result<Box<dyn Actuator + Send>, ActuatorError> {
        Ok(match self {
            ActuatorConfig::None => Box::new(LogOnly::stderr()),
            ActuatorConfig::Gpio(c) => Box::new(GpioRelay::open(c)?),
            ActuatorConfig::Command(c) => Box::new(CommandActuator::new(c.clone())?),
        })
    }
}

/// Why an actuator failed. Every variant leaves the door locked as far as this process
/// can ensure it (see each back-end).
#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    #[error("actuator.{field} = {value}: {fix}")]
    Config {
        field: &'static str,
        value: String,
        fix: &'static str,
    },
    #[error("gpio relay unavailable: {why} — build fas-edge for Linux with `--features gpio`, or configure the `command` or `none` actuator")]
    GpioUnavailable { why: &'static str },
    #[error("gpio {} line {offset}: cannot {action} — check actuator.chip and actuator.line (`gpioinfo` lists them), that no other process holds the line, and the device permissions", chip.display())]
    Gpio {
        chip: PathBuf,
        offset: u32,
        action: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("gpio {} line {offset}: drove it {} but it reads {} — another consumer or a wiring fault; door state unknown, inspect the relay", chip.display(), level_name(*expected), level_name(!*expected))]
    GpioReadback {
        chip: PathBuf,
        offset: u32,
        expected: bool,
    },
    #[error("command {}: cannot start it — check actuator.program exists and is executable", program.display())]
    CommandSpawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("command {}: cannot {action}", program.display())]
    CommandIo {
        program: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("command {}: still running after {timeout_ms} ms, killed it — make it finish sooner or raise actuator.timeout_ms", program.display())]
    CommandTimeout { program: PathBuf, timeout_ms: u64 },
    #[error("command {}: {status}{} — the door may not have opened; check the program", program.display(), stderr_suffix(stderr))]
    CommandFailed {
        program: PathBuf,
        status: ExitStatus,
        /// The end of its standard error.
        stderr: String,
    },
    #[error("log actuator: cannot write the decision line — check the log's path, free space and permissions")]
    Log {
        #[source]
        source: io::Error,
    },
}

fn level_name(high: bool) -> &'static str {
    if high {
        "high"
    } else {
        "low"
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(", stderr: {s}")
    }
}

/// Milliseconds since `start`, saturating.
fn elapsed_ms(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::policy::Trigger;
    use fas_core::decision::Verdict;

    /// An outcome with the given verdict, as the policy would report it.
    pub(crate) fn outcome(reason: Reason) -> SessionOutcome {
        SessionOutcome {
            verdict: Verdict::from_reason(reason),
            aggregate: Some(0.8),
            scores: vec![0.8; 3],
            frames_used: 3,
            frames_rejected: 0,
            last_rejection: None,
            threshold_used: 0.7,
            trigger: Trigger::External,
            started_ms: 100,
            ended_ms: 200,
            lockout_until_ms: None,
        }
    }

    #[test]
    fn only_a_consistent_grant_unlocks() {
        for r in Reason::ALL {
            assert_eq!(
                unlocks(&outcome(r)),
                matches!(r, Reason::AboveThreshold | Reason::Verified),
                "{r:?}"
            );
        }
        let mut forged = outcome(Reason::Timeout);
        forged.verdict.decision = Decision::Grant;
        assert!(!unlocks(&forged));
    }

    #[test]
    fn config_parses_each_kind() {
        let c: ActuatorConfig = serde_json::from_str(r#"{"kind": "none"}"#).unwrap();
        assert_eq!(c, ActuatorConfig::None);
        let c: ActuatorConfig = serde_json::from_str(
            r#"{"kind": "gpio", "chip": "/dev/gpiochip0", "line": 17, "polarity": "active_low"}"#,
        )
        .unwrap();
        match c {
            ActuatorConfig::Gpio(g) => {
                assert_eq!((g.line, g.polarity), (17, Polarity::ActiveLow));
                assert_eq!(g.pulse_ms, 3000);
            }
            other => panic!("{other:?}"),
        }
        let c: ActuatorConfig =
            serde_json::from_str(r#"{"kind": "command", "program": "/bin/true"}"#).unwrap();
        assert!(matches!(c, ActuatorConfig::Command(_)));
        assert!(serde_json::from_str::<ActuatorConfig>(r#"{"kind": "relay"}"#).is_err());
        assert!(c.build().is_ok());
        assert_eq!(ActuatorConfig::None.build().unwrap().name(), "none");
    }
}
