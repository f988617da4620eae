//! A copy of every audit record off the card: `[audit] syslog = "/dev/log"` sends each
//! record, exactly as written to the log, as one syslog datagram (facility `authpriv`,
//! severity `notice`, tag `fas-edge`) to the local syslog socket — journald or rsyslog,
//! which a site forwards to its log server. Someone who later rewrites or truncates the log
//! on the device cannot reach that copy; `fas-edge audit verify` plus the remote copy show
//! what was changed.
//!
//! Forwarding never blocks or fails a decision: the log on the device stays the record the
//! door depends on. A send that fails is reported on stderr once, then once more when
//! sending works again.

#[cfg(unix)]
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// `authpriv` (10) × 8 + `notice` (5).
const PRI: u8 = 85;

pub struct SyslogForwarder {
    #[cfg(unix)]
    sock: UnixDatagram,
    path: PathBuf,
    failing: bool,
}

impl SyslogForwarder {
    /// An unbound datagram socket that sends to `path` (re-resolved at every send, so a
    /// restarted syslog daemon is found again).
    #[cfg(unix)]
    pub fn new(path: &Path) -> std::io::Result<SyslogForwarder> {
        let sock = UnixDatagram::unbound()?;
        sock.set_nonblocking(true)?;
        Ok(SyslogForwarder {
            sock,
            path: path.to_path_buf(),
            failing: false,
        })
    }

    /// Syslog sockets are a Unix thing.
    #[cfg(not(unix))]
    pub fn new(path: &Path) -> std::io::Result<SyslogForwarder> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!(
                "audit.syslog = {}: no syslog socket on this system",
                path.display()
            ),
        ))
    }

    /// The datagram for one audit line: `<85>fas-edge[PID]: {json}`.
    pub fn datagram(line: &str) -> String {
        format!("<{PRI}>fas-edge[{}]: {line}", std::process::id())
    }

    /// Sends one audit line; never fails the caller.
    pub fn send(&mut self, line: &str) {
        #[cfg(unix)]
        let sent = self
            .sock
            .send_to(Self::datagram(line).as_bytes(), &self.path);
        #[cfg(not(unix))]
        let sent: std::io::Result<usize> = Err(std::io::ErrorKind::Unsupported.into());
        match sent {
            Ok(_) if self.failing => {
                self.failing = false;
                eprintln!(
                    "fas-edge: audit copies reach syslog {} again",
                    self.path.display()
                );
            }
            Ok(_) => {}
            Err(e) if !self.failing => {
                self.failing = true;
                eprintln!(
                    "fas-edge: WARNING: cannot send audit copies to syslog {} ({e}); the log on the device is still written",
                    self.path.display()
                );
            }
            Err(_) => {}
        }
    }
}
