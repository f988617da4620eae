//! What starts a session in triggered mode: a line on standard input, a connection (or
//! line) on a Unix socket, or an edge on a GPIO input line (a push button, a badge
//! reader's output, a door contact) through the Linux GPIO character device.
//!
//! Each source runs on its own thread and sends `()` per trigger; the main loop calls
//! `Door::trigger` for each. A trigger only opens a session: it can never decide one, so a
//! bouncing or noisy line costs at most a `NoDecision` / `Cooldown`, never a grant.
//!
//! GPIO: the line is requested as an input with kernel edge detection (and, where the
//! chip supports it, the kernel's debounce); bounces are also filtered here on the
//! events' own timestamps ([`Debounce`]), as many GPIO chips (PL061, BCM2711's) debounce
//! nothing in hardware.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::mpsc;

#[cfg(unix)]
use anyhow::Context;
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// Which transitions of the (physical) line start a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// Low → high (a button wired to pull the line up when pressed).
    #[default]
    Rising,
    /// High → low (a button to ground with a pull-up: the usual wiring).
    Falling,
    Both,
}

/// Pull resistor on the input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Bias {
    /// Leave it as the board configured it (device tree, firmware).
    #[default]
    AsIs,
    PullUp,
    PullDown,
    Disabled,
}

/// `[trigger] kind = "gpio"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpioTrigger {
    /// The GPIO character device, e.g. `/dev/gpiochip0`.
    pub chip: PathBuf,
    /// Line offset on that chip (`gpioinfo` lists them).
    pub line: u32,
    #[serde(default)]
    pub edge: Edge,
    #[serde(default)]
    pub bias: Bias,
    /// Edges closer than this to the last accepted one are bounces, in milliseconds.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
}

fn default_debounce_ms() -> u64 {
    50
}

/// Longest accepted debounce period (a second-long bounce is a wiring fault).
pub const MAX_DEBOUNCE_MS: u64 = 1000;

impl GpioTrigger {
    /// Checks the fields; the message names the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.chip.as_os_str().is_empty() {
            return Err(
                "trigger.chip is empty: set the GPIO chip device, e.g. /dev/gpiochip0".into(),
            );
        }
        if self.debounce_ms > MAX_DEBOUNCE_MS {
            return Err(format!(
                "trigger.debounce_ms = {} is over {MAX_DEBOUNCE_MS}: a button bounces for a few ms; use 20–100",
                self.debounce_ms
            ));
        }
        Ok(())
    }
}

/// Software debounce on event timestamps: an edge is accepted when it comes at least
/// `period_ns` after the last accepted one.
#[derive(Debug, Clone)]
pub struct Debounce {
    period_ns: u64,
    last: Option<u64>,
}

impl Debounce {
    pub fn new(period_ms: u64) -> Debounce {
        Debounce {
            period_ns: period_ms.saturating_mul(1_000_000),
            last: None,
        }
    }

    /// Whether the edge at `t_ns` (a monotonic timestamp) is a new press.
    pub fn accept(&mut self, t_ns: u64) -> bool {
        match self.last {
            // A timestamp going backwards (another clock, a driver bug) counts as a bounce
            // of the last press rather than a new one.
            Some(last) if t_ns < last.saturating_add(self.period_ns) => false,
            _ => {
                self.last = Some(t_ns);
                true
            }
        }
    }
}

/// The longest trigger line read from stdin or the socket; a longer one ends that input
/// (a peer cannot make the door buffer without bound).
pub const MAX_TRIGGER_LINE: usize = 4096;

/// Calls `on_line` for each line of `r` (the last one may lack its newline) until it
/// returns false or the input ends; a line over [`MAX_TRIGGER_LINE`] bytes is an error
/// and ends the input without being passed on.
pub fn read_lines_capped<R: BufRead>(
    mut r: R,
    mut on_line: impl FnMut(&[u8]) -> bool,
) -> std::io::Result<()> {
    use std::io::Read;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut r)
            .take(MAX_TRIGGER_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() != Some(&b'\n') && n > MAX_TRIGGER_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a trigger line longer than {MAX_TRIGGER_LINE} bytes"),
            ));
        }
        if !on_line(&buf) {
            return Ok(());
        }
    }
}

/// What a trigger source delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerEvent {
    /// Start a session (a button, a plain line, a connection).
    Start,
    /// A credential from a reader or a JSON credential line (or why it could not be read).
    Credential(crate::access::credential::CredentialRead),
}

/// What one line from stdin or the socket means: a JSON credential line, or a plain trigger.
pub fn line_event(line: &[u8]) -> TriggerEvent {
    match std::str::from_utf8(line)
        .ok()
        .and_then(crate::access::credential::parse_json_line)
    {
        Some(read) => TriggerEvent::Credential(read),
        None if line.trim_ascii_start().starts_with(b"{") => {
            TriggerEvent::Credential(Err("JSON credential line: not UTF-8".into()))
        }
        None => TriggerEvent::Start,
    }
}

/// Starts the trigger source of `t` and the credential reader of `access`; `None` when
/// there is neither (continuous mode without a reader).
pub fn spawn(
    t: &crate::config::TriggerSection,
    access: Option<&crate::access::AccessSection>,
) -> Result<Option<mpsc::Receiver<TriggerEvent>>> {
    use crate::config::TriggerSection;
    let (tx, rx) = mpsc::channel();
    let reader = access.and_then(|a| a.wiegand.as_ref());
    if let Some(w) = reader {
        crate::access::wiegand_gpio::spawn(w, tx.clone())?;
    }
    let osdp = access.and_then(|a| a.osdp.as_ref());
    if let Some(o) = osdp {
        crate::access::osdp::spawn(o, tx.clone())?;
    }
    match t {
        TriggerSection::Continuous if reader.is_none() && osdp.is_none() => return Ok(None),
        TriggerSection::Continuous => {}
        TriggerSection::Stdin => {
            std::thread::spawn(move || {
                let r = read_lines_capped(std::io::stdin().lock(), |l| {
                    tx.send(line_event(l)).is_ok()
                });
                if let Err(e) = r {
                    eprintln!("fas-edge: trigger stdin: {e}; no more triggers from it");
                }
            });
        }
        #[cfg(not(unix))]
        TriggerSection::Socket { path } => anyhow::bail!(
            "trigger.kind = \"socket\" ({}) needs Unix domain sockets; use kind = \"stdin\" on this system",
            path.display()
        ),
        #[cfg(unix)]
        TriggerSection::Socket { path } => {
            let _ = std::fs::remove_file(path);
            let listener = std::os::unix::net::UnixListener::bind(path)
                .with_context(|| format!("trigger socket {}", path.display()))?;
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let r = read_lines_capped(std::io::BufReader::new(conn), |l| {
                        tx.send(line_event(l)).is_ok()
                    });
                    if let Err(e) = r {
                        eprintln!("fas-edge: trigger socket: {e}; connection dropped");
                    }
                }
            });
        }
        TriggerSection::Gpio(g) => gpio::spawn(g, tx)?,
    }
    Ok(Some(rx))
}

#[cfg(all(feature = "gpio", target_os = "linux"))]
mod gpio {
    use std::sync::mpsc::Sender;
    use std::time::Duration;

    use anyhow::{Context, Result};
    use gpiocdev::line::{Bias as CdevBias, EdgeDetection, EventClock};
    use gpiocdev::Request;

    use super::{Bias, Debounce, Edge, GpioTrigger};

    pub(super) fn spawn(g: &GpioTrigger, tx: Sender<super::TriggerEvent>) -> Result<()> {
        let mut b = Request::builder();
        b.on_chip(&g.chip)
            .with_consumer("fas-edge trigger")
            .with_line(g.line)
            .as_input()
            .with_event_clock(EventClock::Monotonic)
            .with_edge_detection(match g.edge {
                Edge::Rising => EdgeDetection::RisingEdge,
                Edge::Falling => EdgeDetection::FallingEdge,
                Edge::Both => EdgeDetection::BothEdges,
            });
        let bias = match g.bias {
            Bias::AsIs => None,
            Bias::PullUp => Some(CdevBias::PullUp),
            Bias::PullDown => Some(CdevBias::PullDown),
            Bias::Disabled => Some(CdevBias::Disabled),
        };
        if bias.is_some() {
            b.with_bias(bias);
        }
        let req = b.request().with_context(|| {
            format!(
                "trigger: cannot watch {} line {} — check trigger.chip and trigger.line (`gpioinfo` lists them), that no other driver or process holds the line, and the device permissions",
                g.chip.display(),
                g.line
            )
        })?;
        let mut debounce = Debounce::new(g.debounce_ms);
        let (chip, line) = (g.chip.display().to_string(), g.line);
        eprintln!(
            "fas-edge: trigger: watching {chip} line {line} ({:?} edges)",
            g.edge
        );
        std::thread::spawn(move || loop {
            match req.read_edge_event() {
                Ok(ev) => {
                    if debounce.accept(ev.timestamp_ns)
                        && tx.send(super::TriggerEvent::Start).is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    // The door keeps running (locked between sessions); without its
                    // trigger it simply opens no sessions. Retry slowly.
                    eprintln!("fas-edge: trigger: {chip} line {line}: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        });
        Ok(())
    }
}

#[cfg(not(all(feature = "gpio", target_os = "linux")))]
mod gpio {
    use std::sync::mpsc::Sender;

    use anyhow::{bail, Result};

    use super::GpioTrigger;

    pub(super) fn spawn(g: &GpioTrigger, _tx: Sender<super::TriggerEvent>) -> Result<()> {
        bail!(
            "trigger kind \"gpio\" ({} line {}) needs fas-edge built for Linux with the `gpio` feature; use kind \"stdin\" or \"socket\" here",
            g.chip.display(),
            g.line
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_triggers_or_credentials() {
        assert_eq!(line_event(b"\n"), TriggerEvent::Start);
        assert_eq!(line_event(b"open please\n"), TriggerEvent::Start);
        let c = line_event(b"{\"credential\":\"26:18:4242\"}\n");
        assert_eq!(
            c,
            TriggerEvent::Credential(Ok("26:18:4242".parse().unwrap()))
        );
        assert!(matches!(
            line_event(b"{\"credential\":\"26:18\"}\n"),
            TriggerEvent::Credential(Err(_))
        ));
        assert!(matches!(
            line_event(b" {\xff}\n"),
            TriggerEvent::Credential(Err(_))
        ));
    }

    #[test]
    fn trigger_lines_are_capped() {
        let mut seen = Vec::new();
        read_lines_capped(&b"a\nbb\nlast"[..], |l| {
            seen.push(l.to_vec());
            true
        })
        .unwrap();
        assert_eq!(seen, [&b"a\n"[..], b"bb\n", b"last"]);
        // A flood without a newline: an error, nothing passed on, nothing held beyond the cap.
        let flood = vec![b'x'; 1 << 20];
        let mut calls = 0;
        let e = read_lines_capped(&flood[..], |_| {
            calls += 1;
            true
        })
        .unwrap_err();
        assert_eq!((calls, e.kind()), (0, std::io::ErrorKind::InvalidData));
        // Exactly the cap, with its newline, is still a line.
        let mut ok = vec![b'y'; MAX_TRIGGER_LINE - 1];
        ok.push(b'\n');
        let mut n = 0;
        read_lines_capped(&ok[..], |_| {
            n += 1;
            true
        })
        .unwrap();
        assert_eq!(n, 1);
    }
    use proptest::prelude::*;

    #[test]
    fn bounces_inside_the_period_are_dropped() {
        let ms = 1_000_000;
        let mut d = Debounce::new(50);
        assert!(d.accept(1000 * ms));
        assert!(!d.accept(1001 * ms));
        assert!(!d.accept(1049 * ms));
        assert!(d.accept(1050 * ms));
        // Backwards in time: not a new press.
        assert!(!d.accept(900 * ms));
        assert!(d.accept(2000 * ms));
    }

    proptest! {
        #[test]
        fn accepted_edges_are_at_least_a_period_apart(
            period in 0u64..200,
            gaps in prop::collection::vec(0u64..300_000_000, 1..60),
        ) {
            let mut d = Debounce::new(period);
            let mut t = 0u64;
            let mut accepted: Vec<u64> = Vec::new();
            for g in gaps {
                t += g;
                if d.accept(t) {
                    accepted.push(t);
                }
            }
            prop_assert!(!accepted.is_empty(), "the first edge is always a press");
            for w in accepted.windows(2) {
                prop_assert!(w[1] - w[0] >= period * 1_000_000);
            }
        }
    }

    #[test]
    fn config_parses_with_defaults_and_checks_its_fields() {
        let g: GpioTrigger = toml::from_str("chip = \"/dev/gpiochip0\"\nline = 3\n").unwrap();
        assert_eq!(
            g,
            GpioTrigger {
                chip: "/dev/gpiochip0".into(),
                line: 3,
                edge: Edge::Rising,
                bias: Bias::AsIs,
                debounce_ms: 50,
            }
        );
        assert!(g.validate().is_ok());
        let bad = GpioTrigger {
            debounce_ms: 5000,
            ..g.clone()
        };
        assert!(bad.validate().unwrap_err().contains("debounce_ms"));
        let e =
            toml::from_str::<GpioTrigger>("chip = \"/dev/gpiochip0\"\nline = 3\nedge = \"up\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("rising"), "{e}");
    }
}
