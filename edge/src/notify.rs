//! systemd's readiness and watchdog protocol (`sd_notify`): datagrams to `$NOTIFY_SOCKET`.
//! `READY=1` once the model, detector and camera are up; `WATCHDOG=1` from the frame
//! loop at least twice per `$WATCHDOG_USEC`, so a wedged camera or model gets the service
//! restarted (the door is locked while it is down). Without `$NOTIFY_SOCKET` (not under
//! systemd) every call is a no-op.

use std::time::{Duration, Instant};

/// The watchdog period systemd set (`$WATCHDOG_USEC`), if any.
pub fn watchdog_from_env() -> Option<Duration> {
    std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&us| us > 0)
        .map(Duration::from_micros)
}

/// A relay pulse blocks the frame loop, which pets the watchdog at half its period: a
/// pulse that long would get the service killed mid-pulse (by SIGABRT, with no chance to
/// lock). Refused at start with the two settings to change.
pub fn check_pulse_fits(pulse: Duration, watchdog: Option<Duration>) -> Result<(), String> {
    match watchdog {
        Some(w) if pulse >= w / 2 => Err(format!(
            "actuator.pulse_ms = {} does not fit the service watchdog ({} ms, WatchdogSec=): the frame loop cannot pet it during a pulse — shorten the pulse below {} ms or raise WatchdogSec",
            pulse.as_millis(),
            w.as_millis(),
            (w / 2).as_millis()
        )),
        _ => Ok(()),
    }
}

/// A connection to the service manager, if there is one.
pub struct Notifier {
    #[cfg(target_os = "linux")]
    target: Option<(
        std::os::unix::net::UnixDatagram,
        std::os::unix::net::SocketAddr,
    )>,
    watchdog: Option<Duration>,
    last_pet: Option<Instant>,
}

impl Notifier {
    /// From the environment systemd gives a `Type=notify` service.
    pub fn from_env() -> Notifier {
        let watchdog = watchdog_from_env();
        #[cfg(target_os = "linux")]
        {
            let target = std::env::var("NOTIFY_SOCKET")
                .ok()
                .and_then(|s| Self::connect(&s));
            Notifier {
                target,
                watchdog,
                last_pet: None,
            }
        }
        #[cfg(not(target_os = "linux"))]
        Notifier {
            watchdog,
            last_pet: None,
        }
    }

    #[cfg(target_os = "linux")]
    fn connect(
        s: &str,
    ) -> Option<(
        std::os::unix::net::UnixDatagram,
        std::os::unix::net::SocketAddr,
    )> {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let addr = match s.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
            None if s.starts_with('/') => SocketAddr::from_pathname(s).ok()?,
            None => return None,
        };
        let sock = UnixDatagram::unbound().ok()?;
        Some((sock, addr))
    }

    /// Whether a service manager listens.
    pub fn active(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.target.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Sends one message (`READY=1`, `STATUS=...`); errors are reported, never fatal.
    pub fn send(&self, msg: &str) {
        #[cfg(target_os = "linux")]
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(msg.as_bytes(), addr) {
                eprintln!("fas-edge: sd_notify: {e}");
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = msg;
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// Pets the watchdog when half its period has passed since the last pet.
    pub fn pet(&mut self) {
        let Some(period) = self.watchdog else { return };
        let due = self.last_pet.is_none_or(|t| t.elapsed() >= period / 2);
        if due {
            self.send("WATCHDOG=1");
            self.last_pet = Some(Instant::now());
        }
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_pulse_must_fit_half_the_watchdog() {
        let ms = Duration::from_millis;
        assert!(check_pulse_fits(ms(3000), None).is_ok());
        assert!(check_pulse_fits(ms(3000), Some(ms(10_000))).is_ok());
        let e = check_pulse_fits(ms(5000), Some(ms(10_000))).unwrap_err();
        assert!(e.contains("actuator.pulse_ms = 5000"), "{e}");
        assert!(e.contains("below 5000 ms"), "{e}");
        assert!(check_pulse_fits(ms(30_000), Some(ms(10_000))).is_err());
    }
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn ready_and_watchdog_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut n = Notifier {
            target: Notifier::connect(path.to_str().unwrap()),
            watchdog: Some(Duration::from_secs(3600)),
            last_pet: None,
        };
        assert!(n.active());
        n.ready("camera /dev/video0");
        n.pet();
        n.pet(); // not due again for half an hour: nothing sent
        n.stopping();
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        for _ in 0..3 {
            let k = server.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..k]).into_owned());
        }
        assert_eq!(
            got,
            [
                "READY=1\nSTATUS=camera /dev/video0",
                "WATCHDOG=1",
                "STOPPING=1"
            ]
        );
        // Relative paths and garbage are refused, not guessed.
        assert!(Notifier::connect("relative/sock").is_none());
    }
}
