//! OSDP card readers (IEC 60839-11-5, the RS-485 protocol of current readers) with
//! fas-edge as the control panel (CP), in plain text (no secure channel).
//!
//! The protocol (polls, sequence numbers, CRC-16, retries, the reader's online state) is
//! LibOSDP's, through the `libosdp` crate (feature `osdp`), which builds the vendored C
//! library with `cc`. This module adds the serial device (raw mode, the configured baud,
//! reopened when it goes away) and turns the reader's `osdp_RAW` card reads into
//! credentials with the same layouts as a Wiegand reader: an `osdp_RAW` reply carries a bit
//! count and the bits, first bit in the most significant bit of the first byte.
//!
//! Every read that does not decode becomes a `credential_invalid` read; a reader that stops
//! answering is logged, polled again, and never stops the door.

use std::path::PathBuf;
use std::sync::mpsc::Sender;

use anyhow::Result;
use fas_core::access::AccessMode;
use serde::{Deserialize, Serialize};

use super::credential::CredentialRead;
use super::wiegand::{self, Layout};
use crate::trigger::TriggerEvent;

/// The baud rates OSDP allows.
pub const BAUD_RATES: [u32; 6] = [9600, 19200, 38400, 57600, 115200, 230400];

/// `[access.osdp]`: one OSDP reader on a serial device (an RS-485 adapter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsdpSection {
    /// The serial device, e.g. `/dev/ttyUSB0` or `/dev/ttyAMA0`.
    pub device: PathBuf,
    /// One of [`BAUD_RATES`]; the reader's own setting (9600 from the factory).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// The reader's OSDP address, 0..=126 (0 from the factory).
    #[serde(default)]
    pub address: u32,
    /// Card layouts accepted besides the standard 26- and 34-bit ones (as
    /// `[[access.wiegand.layouts]]`).
    #[serde(default)]
    pub layouts: Vec<Layout>,
}

fn default_baud() -> u32 {
    9600
}

impl OsdpSection {
    /// Every layout this reader's cards are decoded with (26, 34, then the configured ones).
    pub fn all_layouts(&self) -> Vec<Layout> {
        super::wiegand::with_standard(&self.layouts)
    }

    /// Checks the section under `mode`; `Err((key, problem))`.
    pub fn validate(&self, mode: AccessMode) -> Result<(), (String, String)> {
        if !BAUD_RATES.contains(&self.baud) {
            return Err((
                "access.osdp.baud".into(),
                format!(
                    "{} is not an OSDP baud rate; use the reader's setting, one of {BAUD_RATES:?} (9600 from the factory)",
                    self.baud
                ),
            ));
        }
        if self.address > 126 {
            return Err((
                "access.osdp.address".into(),
                format!(
                    "{} is not a reader address (0..=126; 127 is broadcast); use the reader's address, 0 from the factory",
                    self.address
                ),
            ));
        }
        if self.device.as_os_str().is_empty() {
            return Err((
                "access.osdp.device".into(),
                "is empty; name the reader's serial device, e.g. \"/dev/ttyUSB0\"".into(),
            ));
        }
        super::wiegand::validate_extra("access.osdp.layouts", &self.layouts)?;
        if !mode.needs_credential() {
            return Err((
                "access.osdp".into(),
                format!(
                    "a reader is configured but mode \"{mode}\" reads no credential; use \"credential+face\" or \"credential\""
                ),
            ));
        }
        Ok(())
    }
}

/// The `nr_bits` card bits in `data` (first bit in the most significant bit of byte 0),
/// decoded with `layouts`; or why they are not a credential.
pub fn card_read(layouts: &[Layout], nr_bits: usize, data: &[u8]) -> CredentialRead {
    if nr_bits == 0 {
        return Err("OSDP card read of 0 bits".into());
    }
    if nr_bits > data.len() * 8 {
        return Err(format!(
            "OSDP card read of {nr_bits} bits carries only {} bytes",
            data.len()
        ));
    }
    let bits: Vec<bool> = (0..nr_bits)
        .map(|i| data[i / 8] & (0x80 >> (i % 8)) != 0)
        .collect();
    wiegand::decode(layouts, &bits).map_err(|e| format!("OSDP card read: {e}"))
}

/// What the reader thread reports besides credentials (the reader going offline and
/// coming back, the serial device failing); [`spawn`] prints them to stderr.
pub type Log = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// Starts the control panel for the reader of `o`; its card reads go to `tx`.
pub fn spawn(o: &OsdpSection, tx: Sender<TriggerEvent>) -> Result<()> {
    spawn_logged(o, tx, std::sync::Arc::new(|m| eprintln!("fas-edge: {m}"))).map(|_| ())
}

/// [`spawn`] with the reader's log lines going to `log`; the handle of the reader thread,
/// which ends only when `tx`'s receiver is gone.
#[cfg(all(feature = "osdp", unix))]
pub fn spawn_logged(
    o: &OsdpSection,
    tx: Sender<TriggerEvent>,
    log: Log,
) -> Result<std::thread::JoinHandle<()>> {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use anyhow::Context;

    let where_ = format!("OSDP reader {} on {}", o.address, o.device.display());
    let shared = Arc::new(cp::Shared {
        tx,
        layouts: o.all_layouts(),
        gone: Default::default(),
    });
    let serial = serial::Serial::open(o.device.clone(), o.baud, log.clone()).with_context(|| {
        format!(
            "access.osdp.device: cannot open {} — check the path (`ls /dev/ttyUSB* /dev/ttyAMA*`), that no other process holds it, and the device permissions",
            o.device.display()
        )
    })?;
    let mut panel = cp::build(o, serial, &shared)?;
    log(&format!("{where_}: polling at {} baud", o.baud));
    let o = o.clone();
    Ok(std::thread::Builder::new()
        .name("osdp-cp".into())
        .spawn(move || {
            let mut online = false;
            let mut since = Instant::now();
            let mut retry = cp::RETRY_MIN;
            let mut warned_silent = false;
            while !shared.gone.load(Ordering::Relaxed) {
                panel.refresh();
                let now = panel.is_online(0);
                if now != online {
                    online = now;
                    since = Instant::now();
                    retry = cp::RETRY_MIN;
                    warned_silent = true;
                    if now {
                        log(&format!("{where_}: online"));
                    } else {
                        log(&format!(
                            "{where_}: offline (no reply to polls); the door takes no cards from it until it answers again, polled again within {} s — check its power, the RS-485 wiring, access.osdp.address and access.osdp.baud",
                            cp::RETRY_MAX.as_secs()
                        ));
                    }
                }
                if !online && since.elapsed() >= retry {
                    // LibOSDP waits five minutes before it polls an offline reader again;
                    // a new control panel polls at once.
                    let serial = serial::Serial::reopen(o.device.clone(), o.baud, log.clone());
                    match cp::build(&o, serial, &shared) {
                        Ok(p) => panel = p,
                        Err(e) => log(&format!("{where_}: {e:#}")),
                    }
                    since = Instant::now();
                    retry = (retry * 2).min(cp::RETRY_MAX);
                    if !warned_silent && retry >= Duration::from_secs(8) {
                        warned_silent = true;
                        log(&format!(
                            "{where_}: not answering yet; still polling — check its power, the RS-485 wiring, access.osdp.address and access.osdp.baud"
                        ));
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })?)
}

/// One LibOSDP control panel with the reader of an `[access.osdp]` section.
#[cfg(all(feature = "osdp", unix))]
mod cp {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::Sender;
    use std::sync::Arc;
    use std::time::Duration;

    use anyhow::Result;
    use libosdp::{ControlPanel, ControlPanelBuilder, OsdpEvent, PdInfoBuilder};

    use super::{card_read, Layout, OsdpSection};
    use crate::trigger::TriggerEvent;

    /// How soon an offline reader is polled again (doubling up to [`RETRY_MAX`]).
    pub const RETRY_MIN: Duration = Duration::from_secs(2);
    pub const RETRY_MAX: Duration = Duration::from_secs(32);

    /// What every control panel of one reader shares (its event callback holds only this).
    pub struct Shared {
        pub tx: Sender<TriggerEvent>,
        pub layouts: Vec<Layout>,
        /// The door's receiver is gone: the reader thread ends.
        pub gone: AtomicBool,
    }

    /// A control panel polling the reader of `o` over `serial`.
    ///
    /// LibOSDP keeps each panel's channel and event callback (a few dozen bytes) after the
    /// panel is torn down; a panel is rebuilt at most every [`RETRY_MIN`] to [`RETRY_MAX`]
    /// while the reader is offline.
    pub fn build(
        o: &OsdpSection,
        serial: super::serial::Serial,
        shared: &Arc<Shared>,
    ) -> Result<ControlPanel> {
        let pd = PdInfoBuilder::new()
            .name("fas-edge reader")
            .and_then(|p| p.address(o.address as i32))
            .and_then(|p| p.baud_rate(o.baud as i32))
            .map_err(|e| {
                anyhow::anyhow!("access.osdp: {e:?}; check access.osdp.address and baud")
            })?;
        let mut panel = ControlPanelBuilder::new()
            .add_channel(Box::new(serial), vec![pd])
            .build()
            .map_err(|e| {
                anyhow::anyhow!("access.osdp: LibOSDP could not set up the control panel ({e:?})")
            })?;
        let shared = shared.clone();
        panel.set_event_callback(move |_pd, event| {
            if let OsdpEvent::CardRead(c) = event {
                let read = card_read(&shared.layouts, c.nr_bits, &c.data);
                if shared.tx.send(TriggerEvent::Credential(read)).is_err() {
                    shared.gone.store(true, Ordering::Relaxed);
                }
            }
            0
        });
        Ok(panel)
    }
}

#[cfg(not(all(feature = "osdp", unix)))]
pub fn spawn_logged(
    o: &OsdpSection,
    _tx: Sender<TriggerEvent>,
    _log: Log,
) -> Result<std::thread::JoinHandle<()>> {
    anyhow::bail!(
        "access.osdp ({}) needs fas-edge built for a Unix system with the `osdp` feature; use JSON credential lines on trigger.kind = \"socket\" here",
        o.device.display()
    )
}

/// LibOSDP's crash dump calls glibc's `backtrace` when its C is compiled against glibc's
/// headers, as the boards' static musl builds are (Debian's aarch64-linux-gnu-gcc as the
/// musl target's C compiler); musl has none, so the dump lists no frames there.
#[cfg(all(feature = "osdp", target_env = "musl"))]
mod musl_backtrace {
    use std::ffi::{c_char, c_int, c_void};

    #[no_mangle]
    extern "C" fn backtrace(_buf: *mut *mut c_void, _size: c_int) -> c_int {
        0
    }

    #[no_mangle]
    extern "C" fn backtrace_symbols(_buf: *const *mut c_void, _size: c_int) -> *mut *mut c_char {
        std::ptr::null_mut()
    }
}

/// The serial device as LibOSDP's channel: non-blocking, raw, at the reader's baud; closed
/// and reopened (at most once a second) when it fails, e.g. a USB adapter pulled out.
#[cfg(all(feature = "osdp", unix))]
mod serial {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use libosdp::{Channel, ChannelError};

    use super::Log;

    pub struct Serial {
        path: PathBuf,
        baud: u32,
        fd: Option<OwnedFd>,
        last_open: Instant,
        log: Log,
    }

    impl Serial {
        /// The device, or the error when it does not open.
        pub fn open(path: PathBuf, baud: u32, log: Log) -> std::io::Result<Serial> {
            let fd = open_raw(&path, baud)?;
            Ok(Serial {
                path,
                baud,
                fd: Some(fd),
                last_open: Instant::now(),
                log,
            })
        }

        /// The device, opened now when it can be, else on a later read or write.
        pub fn reopen(path: PathBuf, baud: u32, log: Log) -> Serial {
            let fd = open_raw(&path, baud).ok();
            Serial {
                path,
                baud,
                fd,
                last_open: Instant::now(),
                log,
            }
        }

        fn fail(&mut self, what: &str, e: std::io::Error) {
            (self.log)(&format!(
                "OSDP serial device {}: {what} failed ({e}); reopening it every second",
                self.path.display()
            ));
            self.fd = None;
        }

        /// The open device, reopening it when it was closed a second ago or more.
        fn fd(&mut self) -> Option<i32> {
            if self.fd.is_none() && self.last_open.elapsed() >= Duration::from_secs(1) {
                self.last_open = Instant::now();
                match open_raw(&self.path, self.baud) {
                    Ok(fd) => {
                        (self.log)(&format!(
                            "OSDP serial device {}: reopened",
                            self.path.display()
                        ));
                        self.fd = Some(fd);
                    }
                    Err(_) => return None,
                }
            }
            self.fd.as_ref().map(|f| f.as_raw_fd())
        }
    }

    fn open_raw(path: &std::path::Path, baud: u32) -> std::io::Result<OwnedFd> {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: open with a NUL-terminated path; the fd is owned below.
        let raw = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let speed = match baud {
            9600 => libc::B9600,
            19200 => libc::B19200,
            38400 => libc::B38400,
            57600 => libc::B57600,
            115200 => libc::B115200,
            230400 => libc::B230400,
            _ => return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
        };
        // SAFETY: termios calls on an open descriptor with a termios they filled in.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(raw, &mut t) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::cfmakeraw(&mut t);
            t.c_cflag |= libc::CLOCAL | libc::CREAD;
            t.c_cc[libc::VMIN] = 0;
            t.c_cc[libc::VTIME] = 0;
            if libc::cfsetispeed(&mut t, speed) != 0
                || libc::cfsetospeed(&mut t, speed) != 0
                || libc::tcsetattr(raw, libc::TCSANOW, &t) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(fd)
    }

    impl Channel for Serial {
        fn get_id(&self) -> i32 {
            0
        }

        fn read(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
            let Some(fd) = self.fd() else {
                return Err(ChannelError::WouldBlock);
            };
            // SAFETY: reads at most buf.len() bytes into buf.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::WouldBlock
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                self.fail("read", e);
            }
            Err(ChannelError::WouldBlock)
        }

        fn write(&mut self, buf: &[u8]) -> Result<usize, ChannelError> {
            let Some(fd) = self.fd() else {
                // No device: the bytes are lost as on a cut wire; the reader goes offline.
                return Ok(buf.len());
            };
            // SAFETY: writes buf.len() bytes from buf.
            let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                return Err(ChannelError::WouldBlock);
            }
            self.fail("write", e);
            Ok(buf.len())
        }

        fn flush(&mut self) -> Result<(), ChannelError> {
            if let Some(fd) = self.fd.as_ref() {
                // Drop bytes not yet read (LibOSDP flushes before a new command).
                // SAFETY: tcflush on an open descriptor.
                unsafe { libc::tcflush(fd.as_raw_fd(), libc::TCIFLUSH) };
            }
            Ok(())
        }

        fn close(&mut self) -> Result<(), ChannelError> {
            self.fd = None;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<super::super::AccessSection, String> {
        let s: super::super::AccessSection = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map_err(|(k, p)| format!("{k}: {p}"))?;
        Ok(s)
    }

    #[test]
    fn sections_parse_and_refuse() {
        let o = "mode = \"credential\"\n[osdp]\ndevice = \"/dev/ttyUSB0\"";
        let s = parse(o).unwrap().osdp.unwrap();
        assert_eq!((s.baud, s.address), (9600, 0));
        let e = parse(&format!("{o}\nbaud = 9601")).unwrap_err();
        assert!(e.starts_with("access.osdp.baud"), "{e}");
        let e = parse(&format!("{o}\naddress = 127")).unwrap_err();
        assert!(e.starts_with("access.osdp.address"), "{e}");
        let e = parse(&o.replace("\"credential\"", "\"face\"")).unwrap_err();
        assert!(e.starts_with("access.osdp:"), "{e}");
        let e = parse(&format!(
            "{o}\n[[osdp.layouts]]\nbits = 26\nfacility = [1, 8]\ncard = [9, 16]\nparity = \"none\""
        ))
        .unwrap_err();
        assert!(e.starts_with("access.osdp.layouts[0].bits"), "{e}");
        assert!(parse(&format!("{o}\nspeed = 9600")).is_err());
        // Both readers at one door feed the same credential channel.
        parse(&format!(
            "{o}\n[wiegand]\nchip = \"/dev/gpiochip0\"\nd0 = 1\nd1 = 2"
        ))
        .unwrap();
    }

    #[test]
    fn raw_card_bits_decode_like_wiegand() {
        let layouts = [Layout::W26, Layout::W34];
        let frame = Layout::W26.encode(18, 4242).unwrap();
        let mut data = vec![0u8; 4];
        for (i, &b) in frame.iter().enumerate() {
            if b {
                data[i / 8] |= 0x80 >> (i % 8);
            }
        }
        let c = card_read(&layouts, 26, &data).unwrap();
        assert_eq!((c.bits, c.facility, c.card), (26, 18, 4242));
        data[0] ^= 0x40; // one data bit flipped: parity fails
        assert!(card_read(&layouts, 26, &data)
            .unwrap_err()
            .contains("parity"));
        assert!(card_read(&layouts, 10, &data[..2]).is_err());
        assert!(card_read(&layouts, 26, &data[..3]).is_err());
        assert!(card_read(&layouts, 0, &[]).is_err());
    }
}
