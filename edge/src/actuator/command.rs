//! Door actuator that runs an external program (a door controller's CLI, an HTTP call
//! through `curl`, a site-specific script).
//!
//! For each decision it acts on, the program is started with the configured arguments and
//! one JSON object ([`CommandMessage`], one line) on its standard input; standard output is
//! discarded and the end of standard error is kept for the error message. The program must
//! exit 0 within `timeout_ms`; otherwise its whole process group is killed and the call
//! fails. By default the program runs **only for a grant**, so a script that ignores its
//! input still cannot open the door on a deny; with `every_decision = true` it runs for
//! every decision and must itself open only when `"unlock": true`.
//!
//! The program owns the door's timing (pulse, re-lock); this process holds no line, so
//! [`Actuator::lock`] has nothing to do and dropping the actuator leaves nothing behind.
//!
//! The program gets nothing of the door but its JSON line: its environment is cleared
//! (only `PATH=/usr/sbin:/usr/bin:/sbin:/bin`), and on Linux no descriptor above standard
//! error survives into it — the camera (which the `v4l` crate opens without
//! `O_CLOEXEC`), the GPIO line, the framebuffer, the audit log.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use fas_core::decision::{Decision, Reason};

use super::{elapsed_ms, unlocks, ActuationReport, Actuator, ActuatorError};
use crate::policy::SessionOutcome;

/// `actuator = { kind = "command", program = "/usr/local/bin/door", args = ["--site", "a"], timeout_ms = 5000 }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The program; a bare name is looked up on `PATH`.
    pub program: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    /// Kill the program (and its process group) after this long, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Run for every decision, not only for grants.
    #[serde(default)]
    pub every_decision: bool,
}

fn default_timeout_ms() -> u64 {
    5000
}

/// The program's whole environment.
pub const CHILD_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Marks every descriptor above standard error close-on-exec (std's own exec-error pipe
/// already is, so spawn errors are still reported): `close_range(3, ~0,
/// CLOSE_RANGE_CLOEXEC)` (Linux ≥ 5.11), else `fcntl` on the first 4096.
#[cfg(target_os = "linux")]
fn mark_inherited_fds_cloexec() {
    // SAFETY: plain system calls on descriptor numbers; no memory is touched.
    unsafe {
        let r = libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if r != 0 {
            for fd in 3..4096 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}

/// Longest timeout accepted (the pipeline waits this long at most).
pub const MAX_TIMEOUT_MS: u64 = 120_000;

/// Bytes of the program's standard error kept for the error message.
const STDERR_TAIL: usize = 2048;

impl CommandConfig {
    pub fn validate(&self) -> Result<(), ActuatorError> {
        if self.program.as_os_str().is_empty() {
            return Err(ActuatorError::Config {
                field: "program",
                value: String::new(),
                fix: "name the program to run on a grant",
            });
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(ActuatorError::Config {
                field: "timeout_ms",
                value: self.timeout_ms.to_string(),
                fix: "must lie in 1..=120000 ms",
            });
        }
        Ok(())
    }
}

/// The JSON object written to the program's standard input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandMessage {
    /// True only for a grant: the one case in which the program may open the door.
    pub unlock: bool,
    pub decision: Decision,
    pub reason: Reason,
    /// The aggregate `p_live` compared with `threshold`, if the session got that far.
    pub aggregate: Option<f32>,
    pub threshold: f32,
    pub frames_used: usize,
    /// Wall-clock time of the call, milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
}

impl CommandMessage {
    pub fn from_outcome(outcome: &SessionOutcome, time_ms: u64) -> Self {
        Self {
            unlock: unlocks(outcome),
            decision: outcome.verdict.decision,
            reason: outcome.verdict.reason,
            aggregate: outcome.aggregate.filter(|a| a.is_finite()),
            threshold: outcome.threshold_used,
            frames_used: outcome.frames_used,
            time_ms,
        }
    }
}

pub struct CommandActuator {
    config: CommandConfig,
}

impl CommandActuator {
    pub fn new(config: CommandConfig) -> Result<Self, ActuatorError> {
        config.validate()?;
        Ok(Self { config })
    }

    pub fn config(&self) -> &CommandConfig {
        &self.config
    }

    /// Runs the program once with `msg` on its standard input.
    pub fn run(&self, msg: &CommandMessage) -> Result<(), ActuatorError> {
        let program = &self.config.program;
        let io_err = |action: &'static str| {
            move |source: io::Error| ActuatorError::CommandIo {
                program: program.clone(),
                action,
                source,
            }
        };
        let mut line = serde_json::to_vec(msg)
            .map_err(|e| io_err("encode the decision as JSON")(io::Error::other(e)))?;
        line.push(b'\n');

        let mut cmd = Command::new(program);
        cmd.args(&self.config.args)
            .env_clear()
            .env("PATH", CHILD_PATH)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group, so a timeout kills whatever it started too.
            cmd.process_group(0);
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: the closure runs between fork and exec and makes only
            // async-signal-safe system calls (close_range, fcntl); it allocates nothing.
            unsafe {
                cmd.pre_exec(|| {
                    mark_inherited_fds_cloexec();
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().map_err(|source| ActuatorError::CommandSpawn {
            program: program.clone(),
            source,
        })?;
        let stderr = spawn_tail_reader(child.stderr.take());

        if let Some(mut stdin) = child.stdin.take() {
            match stdin.write_all(&line) {
                // The program need not read its input.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) => {
                    kill(&mut child);
                    return Err(io_err("write the decision to its stdin")(e));
                }
                Ok(()) => {}
            }
        }

        let status = match wait_timeout(&mut child, Duration::from_millis(self.config.timeout_ms)) {
            Ok(Some(status)) => status,
            Ok(None) => {
                kill(&mut child);
                return Err(ActuatorError::CommandTimeout {
                    program: program.clone(),
                    timeout_ms: self.config.timeout_ms,
                });
            }
            Err(e) => {
                kill(&mut child);
                return Err(io_err("wait for it")(e));
            }
        };
        if !status.success() {
            // A child it left running may hold stderr open: do not wait on it for long.
            let stderr = stderr
                .recv_timeout(Duration::from_millis(200))
                .unwrap_or_default();
            return Err(ActuatorError::CommandFailed {
                program: program.clone(),
                status,
                stderr,
            });
        }
        Ok(())
    }
}

/// Reads `pipe` to its end on a thread, keeping the last [`STDERR_TAIL`] bytes.
fn spawn_tail_reader<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut tail = Vec::new();
            let mut buf = [0u8; 1024];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&tail).into_owned());
        });
    }
    rx
}

/// `Ok(None)` when `timeout` passed with the child still running.
fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// Kills the child's process group (it leads its own), then reaps the child.
fn kill(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: plain syscall; the child is not reaped yet, so its pid (= its process
        // group id) still names our child's group and cannot have been reused.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Actuator for CommandActuator {
    fn name(&self) -> &'static str {
        "command"
    }

    fn apply(&mut self, outcome: &SessionOutcome) -> Result<ActuationReport, ActuatorError> {
        let start = Instant::now();
        let msg = CommandMessage::from_outcome(outcome, crate::camera::wall_ms_now());
        let report = |unlocked: bool, detail: String| ActuationReport {
            actuator: "command",
            decision: outcome.verdict.decision,
            unlocked,
            elapsed_ms: elapsed_ms(start),
            detail,
        };
        if !msg.unlock && !self.config.every_decision {
            return Ok(report(false, "not a grant: program not run".into()));
        }
        self.run(&msg)?;
        Ok(report(
            msg.unlock,
            format!(
                "{} ran for {:?} ({} ms)",
                self.config.program.display(),
                msg.decision,
                elapsed_ms(start)
            ),
        ))
    }

    fn lock(&mut self) -> Result<(), ActuatorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        let ok = CommandConfig {
            program: "sh".into(),
            args: vec![],
            timeout_ms: 1000,
            every_decision: false,
        };
        ok.validate().unwrap();
        for (c, field) in [
            (
                CommandConfig {
                    program: PathBuf::new(),
                    ..ok.clone()
                },
                "program",
            ),
            (
                CommandConfig {
                    timeout_ms: 0,
                    ..ok.clone()
                },
                "timeout_ms",
            ),
            (
                CommandConfig {
                    timeout_ms: MAX_TIMEOUT_MS + 1,
                    ..ok.clone()
                },
                "timeout_ms",
            ),
        ] {
            match CommandActuator::new(c) {
                Err(ActuatorError::Config { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {:?}", other.err()),
            }
        }
    }

    #[test]
    fn stderr_tail_keeps_the_end() {
        let data: Vec<u8> = (0..5000).map(|i| b'a' + (i % 26) as u8).collect();
        let rx = spawn_tail_reader(Some(io::Cursor::new(data.clone())));
        let tail = rx.recv().unwrap();
        assert_eq!(tail.as_bytes(), &data[data.len() - STDERR_TAIL..]);
    }
}
