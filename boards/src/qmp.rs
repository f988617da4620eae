//! A minimal client of QEMU's machine protocol (QMP: JSON lines over a Unix socket), for
//! what the boot checks do from outside a guest: read device registers (the raspi4b relay
//! line) and press the virtual power button (`virt`'s PL061 line 3, the testbed's GPIO
//! trigger).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::Result;

/// The monitor could not be reached or answered something unexpected.
#[derive(Debug, thiserror::Error)]
#[error("QEMU monitor {socket}: {problem}")]
pub struct QmpError {
    pub socket: PathBuf,
    pub problem: String,
}

/// A QEMU Machine Protocol connection (JSON lines over a Unix socket).
pub struct Qmp {
    socket: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects (QEMU creates the socket shortly after it starts) and leaves the greeting's
    /// capabilities negotiation done.
    pub fn connect(socket: &Path, child: &mut Child, within: Duration) -> Result<Qmp> {
        let t0 = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) => {
                    if child.try_wait()?.is_some() || t0.elapsed() > within {
                        return Err(QmpError {
                            socket: socket.to_path_buf(),
                            problem: format!(
                                "cannot connect ({e}); QEMU stopped or never listened"
                            ),
                        }
                        .into());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut q = Qmp {
            socket: socket.to_path_buf(),
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        q.read_message()?; // {"QMP": {...}}
        q.execute(serde_json::json!({"execute": "qmp_capabilities"}))?;
        Ok(q)
    }

    fn error(&self, problem: String) -> anyhow::Error {
        QmpError {
            socket: self.socket.clone(),
            problem,
        }
        .into()
    }

    fn read_message(&mut self) -> Result<serde_json::Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| self.error(format!("reading: {e}")))?;
        if n == 0 {
            return Err(self.error("closed".into()));
        }
        serde_json::from_str(&line).map_err(|e| self.error(format!("{e} in {line:?}")))
    }

    /// Sends a command; returns its `return` value (events in between are skipped).
    pub fn execute(&mut self, cmd: serde_json::Value) -> Result<serde_json::Value> {
        writeln!(self.writer, "{cmd}").map_err(|e| self.error(format!("writing: {e}")))?;
        loop {
            let mut m = self.read_message()?;
            if let Some(r) = m.get_mut("return") {
                return Ok(r.take());
            }
            if let Some(e) = m.get("error") {
                return Err(self.error(format!("{cmd} failed: {e}")));
            }
        }
    }

    /// One 32-bit word of the guest's physical address space (`xp`: device registers are
    /// read as the CPU would, GPLEV/GPFSEL have no read side effects).
    pub fn read_u32(&mut self, address: u64) -> Result<u32> {
        let line = format!("xp /1wx {address:#x}");
        let out = self.execute(serde_json::json!({
            "execute": "human-monitor-command",
            "arguments": {"command-line": line},
        }))?;
        let text = out.as_str().unwrap_or("");
        parse_xp(text).ok_or_else(|| self.error(format!("`{line}` answered {text:?}")))
    }
}

/// The word of an `xp /1wx` answer (`00000000fe200034: 0x00000000`).
fn parse_xp(text: &str) -> Option<u32> {
    let hex = text.trim().rsplit(": ").next()?.strip_prefix("0x")?;
    u32::from_str_radix(hex.trim(), 16).ok()
}

/// Presses `virt`'s power button: QEMU pulses PL061 line 3 high for 100 ms (with a device
/// tree and no ACPI, as the testbed boots).
impl Qmp {
    pub fn power_button(&mut self) -> Result<()> {
        self.execute(serde_json::json!({"execute": "system_powerdown"}))
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xp_answers_parse() {
        assert_eq!(
            parse_xp("00000000fe200004: 0x00212000\r\n"),
            Some(0x0021_2000)
        );
        assert_eq!(parse_xp("Cannot access memory\r\n"), None);
    }
}
