//! fas-edge's OSDP control panel (`access::osdp`) against an OSDP peripheral device written
//! by others: PyPI libosdp's `PeripheralDevice` (edge/tests/osdp_pd.py, installed into
//! `.venv` by `cargo xtask setup`), across a pseudo-terminal pair: the reader process holds
//! the master side, the control panel opens the slave as its serial device.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fas_edge::access::credential::Credential;
use fas_edge::access::osdp::{spawn_logged, OsdpSection};
use fas_edge::access::wiegand::Layout;
use fas_edge::trigger::TriggerEvent;

/// The project venv's python (`$VIRTUAL_ENV`, else the workspace's `.venv`).
fn python() -> PathBuf {
    let venv = std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `cargo xtask setup` (it installs PyPI libosdp into .venv)",
        py.display()
    );
    py
}

/// A pseudo-terminal pair: (master, slave, the slave's path).
fn pty() -> (OwnedFd, OwnedFd, PathBuf) {
    let (mut m, mut s) = (-1, -1);
    // SAFETY: openpty writes two descriptors; no name buffer, termios or window size.
    let rc = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: two new descriptors owned from here on.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ttyname_r writes a NUL-terminated name into the buffer.
    let rc = unsafe { libc::ttyname_r(slave.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    assert_eq!(rc, 0, "ttyname_r");
    // SAFETY: NUL-terminated by ttyname_r.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    (master, slave, PathBuf::from(path.to_str().unwrap()))
}

/// Drops what the control panel sent while no reader listened: on an RS-485 line those
/// bytes are gone, a pty keeps them for the next reader.
fn drain(master: &OwnedFd) {
    let fd = master.as_raw_fd();
    // SAFETY: fcntl and read on an open descriptor, into a local buffer.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        let mut buf = [0u8; 4096];
        while libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) > 0 {}
        libc::fcntl(fd, libc::F_SETFL, flags);
    }
}

/// The Python reader on the pty's master side, online (polled by the control panel).
struct Pd {
    child: Child,
    stdin: ChildStdin,
    out: Receiver<String>,
}

impl Pd {
    fn start(master: &OwnedFd, address: u32) -> Pd {
        drain(master);
        // dup() leaves close-on-exec off: the reader inherits the copy.
        // SAFETY: dup of an open descriptor, owned (and closed) here after the spawn.
        let fd = unsafe { OwnedFd::from_raw_fd(libc::dup(master.as_raw_fd())) };
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/osdp_pd.py");
        let mut child = Command::new(python())
            .arg(&script)
            .arg(fd.as_raw_fd().to_string())
            .arg(address.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Python OSDP reader");
        drop(fd);
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, out) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut pd = Pd { child, stdin, out };
        pd.expect("online", Duration::from_secs(30));
        pd
    }

    fn expect(&mut self, want: &str, within: Duration) {
        match self.out.recv_timeout(within) {
            Ok(l) if l == want => {}
            other => {
                let _ = self.child.kill();
                panic!(
                    "the Python OSDP reader (PyPI libosdp; `cargo xtask setup` installs it) said {other:?}, expected {want:?}"
                );
            }
        }
    }

    /// Reports a raw Wiegand card read of `bits`.
    fn card(&mut self, bits: &[bool]) {
        let mut data = vec![0u8; bits.len().div_ceil(8)];
        for (i, &b) in bits.iter().enumerate() {
            if b {
                data[i / 8] |= 0x80 >> (i % 8);
            }
        }
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(self.stdin, "card {} {hex}", bits.len()).unwrap();
        self.stdin.flush().unwrap();
        self.expect("sent", Duration::from_secs(5));
    }
}

impl Drop for Pd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn credential(rx: &Receiver<TriggerEvent>) -> Result<Credential, String> {
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(TriggerEvent::Credential(read)) => read,
        other => panic!("expected a credential from the OSDP reader, got {other:?}"),
    }
}

/// Waits for a log line of the control panel that contains `want`.
fn logged(log: &Receiver<String>, want: &str, within: Duration) -> String {
    let end = Instant::now() + within;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match log.recv_timeout(left) {
            Ok(l) if l.contains(want) => return l,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("the OSDP control panel logged nothing with {want:?} within {within:?}")
}

/// A 26-bit card read from the reader arrives as `26:18:4242`; a short read and a read
/// with a wrong parity bit arrive as unreadable credentials; the reader killed is logged
/// offline while the control panel keeps polling, and a reader started again on the same
/// line is online again and its cards arrive; the serial device gone is logged and retried.
#[test]
fn osdp_card_reads_arrive_and_a_dead_reader_never_stops_the_panel() {
    let (master, slave, path) = pty();
    let section = OsdpSection {
        device: path.clone(),
        baud: 9600,
        address: 0,
        layouts: vec![],
    };
    let (tx, rx) = mpsc::channel();
    let (ltx, log) = mpsc::channel::<String>();
    let ltx = std::sync::Mutex::new(ltx);
    let cp = spawn_logged(
        &section,
        tx,
        Arc::new(move |m: &str| {
            eprintln!("osdp cp: {m}");
            let _ = ltx.lock().unwrap().send(m.to_string());
        }),
    )
    .unwrap();

    let mut pd = Pd::start(&master, 0);
    logged(&log, "online", Duration::from_secs(10));
    pd.card(&Layout::W26.encode(18, 4242).unwrap());
    assert_eq!(
        credential(&rx),
        Ok(Credential {
            bits: 26,
            facility: 18,
            card: 4242
        })
    );
    pd.card(&[true; 10]);
    let e = credential(&rx).unwrap_err();
    assert!(e.contains("10 bits"), "{e}");
    let mut forged = Layout::W26.encode(18, 4242).unwrap();
    forged[5] = !forged[5];
    pd.card(&forged);
    let e = credential(&rx).unwrap_err();
    assert!(e.contains("parity"), "{e}");

    drop(pd); // killed
    let l = logged(&log, "offline", Duration::from_secs(30));
    assert!(l.contains(&path.display().to_string()), "{l}");
    assert!(!cp.is_finished(), "the control panel thread ended");

    let mut pd = Pd::start(&master, 0);
    logged(&log, "online", Duration::from_secs(30));
    pd.card(&Layout::W26.encode(1, 2).unwrap());
    assert_eq!(credential(&rx).unwrap().to_string(), "26:1:2");
    drop(pd);

    // The device itself gone (the pty hung up: writes fail with EIO).
    drop(master);
    drop(slave);
    logged(&log, "failed", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    assert!(!cp.is_finished(), "the control panel thread ended");
}
