//! SIGTERM / SIGINT / SIGHUP end the run loop instead of killing the process, so a
//! shutdown (systemd stop, Ctrl-C) never lands between "relay unlocked" and "relay
//! locked": the pulse in progress finishes, the loop sees the flag, the door is locked and
//! the line released at the locked level.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_signal(_sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handlers (idempotent).
pub fn install() {
    #[cfg(unix)]
    unsafe {
        let handler: extern "C" fn(libc::c_int) = on_signal;
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            // No SA_RESTART: a blocking camera read returns EINTR and the loop checks.
            sa.sa_flags = 0;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
        // A file-size limit must not kill the door in the middle of a write: the write
        // fails with EFBIG instead, which the door turns into a deny with an alarm.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
