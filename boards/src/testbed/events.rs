//! What the guest reports on its serial console: one event per line, `@fas ` followed by
//! JSON. The guest's `init` and `fas-testbed` print them; the host reads them back out of
//! the serial log (see [`super::verdict`]). Every time is the guest's wall clock in
//! milliseconds since the Unix epoch, the same clock fas-edge stamps audit records with.

use serde::{Deserialize, Serialize};

/// The prefix of every event line.
pub const PREFIX: &str = "@fas ";
/// The prefix of every audit-log line the guest copies to the console after the run.
pub const AUDIT_PREFIX: &str = "@audit ";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Modules loaded, devices present.
    Booted { t_ms: u64, devices: Vec<String> },
    /// vivid's output node is looped into its capture node with this format.
    Looped {
        t_ms: u64,
        width: u32,
        height: u32,
        fourcc: String,
    },
    /// A presentation starts in front of the camera.
    SessionStart {
        t_ms: u64,
        index: usize,
        presentation: String,
    },
    /// Nobody in front of the camera any more.
    SessionEnd {
        t_ms: u64,
        index: usize,
        frames: u64,
    },
    /// The relay line changed (read from the kernel's GPIO debugfs).
    Gpio { t_ms: u64, line: u32, high: bool },
    /// The camera was removed from the system (vivid unbound).
    Unplug { t_ms: u64 },
    /// The camera came back.
    Replug { t_ms: u64 },
    /// Framebuffer contents after the run.
    Framebuffer { t_ms: u64, bytes: u64, nonzero: u64 },
    /// fas-edge's exit: `running` when it was still alive and had to be stopped.
    EdgeExit {
        t_ms: u64,
        running: bool,
        status: i32,
    },
    /// The trigger-phase fas-edge (triggered by GPIO line 3) is ready, having decided
    /// `decisions` sessions so far (there must be none before the button is pressed).
    TriggerReady { t_ms: u64, decisions: u32 },
    /// The trigger phase's decisions (`decision/reason`), after the host pressed the button;
    /// the camera fas-edge reported when ready and the frames it had when stopped.
    TriggerReport {
        t_ms: u64,
        decisions: Vec<String>,
        #[serde(default)]
        camera: String,
        #[serde(default)]
        frames: u64,
    },
    /// The guest is about to power off.
    Done { t_ms: u64 },
    /// Something in the guest failed outright (the reason is free text).
    Error { t_ms: u64, what: String },
}

impl Event {
    /// The serial line for this event.
    pub fn line(&self) -> String {
        format!(
            "{PREFIX}{}",
            serde_json::to_string(self).expect("events serialise")
        )
    }

    /// Parses one serial line; `None` when the line is not an event.
    pub fn parse(line: &str) -> Option<Result<Event, serde_json::Error>> {
        let at = line.find(PREFIX)?;
        Some(serde_json::from_str(line[at + PREFIX.len()..].trim()))
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_a_serial_line() {
        let e = Event::SessionStart {
            t_ms: 7,
            index: 2,
            presentation: "print".into(),
        };
        // Kernel messages may share the line when the console interleaves.
        let line = format!("[   12.3] random: {}", e.line());
        assert_eq!(Event::parse(&line).unwrap().unwrap(), e);
        assert!(Event::parse("fas-edge: ready").is_none());
        assert!(Event::parse("@fas {broken").unwrap().is_err());
    }
}
