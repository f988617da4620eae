//! The `none` actuator: drives no hardware and writes one line per decision, for CI, demos
//! and dry runs on a real door (watch what *would* have opened before wiring the relay).

use std::io::{self, Write};
use std::time::Instant;

use super::{elapsed_ms, unlocks, ActuationReport, Actuator, ActuatorError};
use crate::policy::SessionOutcome;

pub struct LogOnly {
    out: Box<dyn Write + Send>,
}

impl LogOnly {
    /// Lines go to standard error.
    pub fn stderr() -> Self {
        Self::to_writer(Box::new(io::stderr()))
    }

    /// Lines go to `out`.
    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        Self { out }
    }
}

/// `door: grant (above_threshold) aggregate 0.812 threshold 0.700 frames 5 → would unlock`
pub fn describe(outcome: &SessionOutcome) -> String {
    let decision = serde_json::to_value(outcome.verdict.decision)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let reason = serde_json::to_value(outcome.verdict.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let aggregate = match outcome.aggregate {
        Some(a) => format!("{a:.3}"),
        None => "-".into(),
    };
    format!(
        "door: {decision} ({reason}) aggregate {aggregate} threshold {:.3} frames {} → {}",
        outcome.threshold_used,
        outcome.frames_used,
        if unlocks(outcome) {
            "would unlock"
        } else {
            "stays locked"
        }
    )
}

impl Actuator for LogOnly {
    fn name(&self) -> &'static str {
        "none"
    }

    fn apply(&mut self, outcome: &SessionOutcome) -> Result<ActuationReport, ActuatorError> {
        let start = Instant::now();
        let line = describe(outcome);
        writeln!(self.out, "{line}")
            .and_then(|_| self.out.flush())
            .map_err(|source| ActuatorError::Log { source })?;
        Ok(ActuationReport {
            actuator: "none",
            decision: outcome.verdict.decision,
            // Nothing is driven, whatever the decision.
            unlocked: false,
            elapsed_ms: elapsed_ms(start),
            detail: line,
        })
    }

    fn lock(&mut self) -> Result<(), ActuatorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actuator::tests::outcome;
    use fas_core::decision::Reason;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_one_line_per_decision() {
        let buf = Shared::default();
        let mut a = LogOnly::to_writer(Box::new(buf.clone()));
        let rep = a.apply(&outcome(Reason::AboveThreshold)).unwrap();
        assert!(!rep.unlocked);
        a.apply(&outcome(Reason::CameraLost)).unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "door: grant (above_threshold) aggregate 0.800 threshold 0.700 frames 3 → would unlock",
                "door: deny (camera_lost) aggregate 0.800 threshold 0.700 frames 3 → stays locked",
            ]
        );
    }

    #[test]
    fn write_failure_is_an_error() {
        let mut a = LogOnly::to_writer(Box::new(Broken));
        let e = a.apply(&outcome(Reason::Timeout)).unwrap_err();
        // The cause is the chain's, said once: not in the message.
        assert!(!e.to_string().contains("disk full"), "{e}");
        let chain = fas_core::report::chain(&e);
        assert_eq!(chain.matches("disk full").count(), 1, "{chain}");
    }
}
