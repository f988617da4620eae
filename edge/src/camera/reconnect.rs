//! [`Reconnect`]: keeps a [`FrameSource`] alive across unplugs by re-opening it with
//! exponential backoff. Every lost frame, and every failed re-open, is still reported to
//! the caller as [`CaptureError::Lost`] — the door stays locked while the camera is away.

use std::time::{Duration, Instant};

use super::{CaptureError, Frame, FrameSource};

/// Delays between re-open attempts: `initial`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(8),
        }
    }
}

impl BackoffConfig {
    /// Errors name the field: `initial` must be positive, `max` at least `initial`.
    pub fn validate(&self) -> Result<(), CaptureError> {
        if self.initial.is_zero() {
            return Err(CaptureError::Config {
                field: "reconnect.initial",
                value: format!("{:?}", self.initial),
                reason: "must be positive (a zero delay re-opens in a busy loop)".into(),
            });
        }
        if self.max < self.initial {
            return Err(CaptureError::Config {
                field: "reconnect.max",
                value: format!("{:?}", self.max),
                reason: format!("must be at least reconnect.initial ({:?})", self.initial),
            });
        }
        Ok(())
    }
}

/// The backoff schedule: [`Backoff::next_delay`] gives `initial, 2·initial, 4·initial, …`
/// capped at `max`; [`Backoff::reset`] starts over.
#[derive(Debug, Clone)]
pub struct Backoff {
    cfg: BackoffConfig,
    next: Duration,
}

impl Backoff {
    pub fn new(cfg: BackoffConfig) -> Backoff {
        Backoff {
            cfg,
            next: cfg.initial,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = self.next.saturating_mul(2).min(self.cfg.max);
        d
    }

    pub fn reset(&mut self) {
        self.next = self.cfg.initial;
    }
}

/// Monotonic time as seen by [`Reconnect`]; injected so tests run on a virtual clock.
pub trait Clock {
    /// Time since some fixed start; never decreases.
    fn now(&self) -> Duration;
    /// Blocks for `d` (a virtual clock just advances).
    fn sleep(&self, d: Duration);
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// A [`FrameSource`] that re-opens its inner source (with the `open` closure) whenever it
/// reports [`CaptureError::Lost`].
///
/// * A `Lost` from the inner source is passed on, and the next call waits out the backoff
///   delay, then tries to re-open; a failed re-open is reported as `Lost` (naming the
///   re-open error and the next delay) and the delay doubles, up to `max`.
/// * The backoff starts over only after a frame arrives (a source that opens and dies at
///   once does not re-open at the initial rate forever).
/// * Other errors (`Corrupt`, `Timeout`, `EndOfInput`) pass through untouched.
/// * Frames keep one timeline across re-opens: `seq` continues after the last frame
///   delivered, `t` is measured from when the [`Reconnect`] was made.
pub struct Reconnect<S, F, C = SystemClock> {
    label: String,
    open: F,
    source: Option<S>,
    backoff: Backoff,
    clock: C,
    retry_at: Duration,
    seq_base: u64,
    t_base: Duration,
    next_seq: u64,
    last_t: Duration,
    reopens: u64,
    opened_once: bool,
}

impl<S, F> Reconnect<S, F, SystemClock>
where
    S: FrameSource,
    F: FnMut() -> Result<S, CaptureError>,
{
    /// Opens the source now; an error here (wrong device, bad format) is returned as is,
    /// so a misconfigured door fails at start-up.
    pub fn open(
        label: impl Into<String>,
        open: F,
        cfg: BackoffConfig,
    ) -> Result<Self, CaptureError> {
        Self::with_clock(label, open, cfg, SystemClock::default(), true)
    }
}

impl<S, F, C> Reconnect<S, F, C>
where
    S: FrameSource,
    F: FnMut() -> Result<S, CaptureError>,
    C: Clock,
{
    /// Like [`Reconnect::open`] with an explicit clock. With `open_now == false` nothing
    /// is opened yet and the first `next_frame` makes the first attempt (a door that boots
    /// before its camera is plugged in).
    pub fn with_clock(
        label: impl Into<String>,
        mut open: F,
        cfg: BackoffConfig,
        clock: C,
        open_now: bool,
    ) -> Result<Self, CaptureError> {
        cfg.validate()?;
        let source = if open_now { Some(open()?) } else { None };
        let t_base = clock.now();
        Ok(Reconnect {
            label: label.into(),
            open,
            source,
            backoff: Backoff::new(cfg),
            retry_at: t_base,
            clock,
            seq_base: 0,
            t_base,
            next_seq: 0,
            last_t: Duration::ZERO,
            reopens: 0,
            opened_once: open_now,
        })
    }

    /// Whether an inner source is open now.
    pub fn is_connected(&self) -> bool {
        self.source.is_some()
    }

    /// Successful re-opens so far (the first open not counted).
    pub fn reopens(&self) -> u64 {
        self.reopens
    }

    fn lose(&mut self) -> Duration {
        self.source = None;
        let delay = self.backoff.next_delay();
        self.retry_at = self.clock.now() + delay;
        delay
    }
}

impl<S, F, C> FrameSource for Reconnect<S, F, C>
where
    S: FrameSource,
    F: FnMut() -> Result<S, CaptureError>,
    C: Clock,
{
    fn next_frame(&mut self) -> Result<Frame, CaptureError> {
        if self.source.is_none() {
            let now = self.clock.now();
            if now < self.retry_at {
                self.clock.sleep(self.retry_at - now);
            }
            match (self.open)() {
                Ok(s) => {
                    if self.opened_once {
                        self.reopens += 1;
                    }
                    self.opened_once = true;
                    self.source = Some(s);
                    self.seq_base = self.next_seq;
                    self.t_base = self.clock.now();
                }
                Err(e) => {
                    let delay = self.lose();
                    return Err(CaptureError::Lost {
                        device: self.label.clone(),
                        detail: format!("re-open failed ({e}); next attempt in {delay:?}"),
                        os: None,
                    });
                }
            }
        }
        let Some(source) = self.source.as_mut() else {
            unreachable!("opened above")
        };
        match source.next_frame() {
            Ok(f) => {
                self.backoff.reset();
                let seq = self.seq_base + f.seq;
                let seq = seq.max(self.next_seq);
                self.next_seq = seq + 1;
                self.last_t = self.last_t.max(self.t_base + f.t);
                Ok(Frame {
                    seq,
                    t: self.last_t,
                    ..f
                })
            }
            Err(e) => {
                if e.is_lost() {
                    self.lose();
                }
                Err(e)
            }
        }
    }

    fn describe(&self) -> String {
        match &self.source {
            Some(s) => format!("{} (reconnecting)", s.describe()),
            None => format!("{} (lost, reconnecting)", self.label),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A virtual clock that records every sleep.
    #[derive(Clone, Default)]
    struct FakeClock(Rc<RefCell<(Duration, Vec<Duration>)>>);

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            self.0.borrow().0
        }
        fn sleep(&self, d: Duration) {
            let mut s = self.0.borrow_mut();
            s.0 += d;
            s.1.push(d);
        }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(BackoffConfig {
            initial: ms(100),
            max: ms(700),
        });
        let got: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(got, [ms(100), ms(200), ms(400), ms(700), ms(700), ms(700)]);
        b.reset();
        assert_eq!(b.next_delay(), ms(100));
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = BackoffConfig {
            initial: ms(0),
            max: ms(1),
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("reconnect.initial"), "{e}");
        let e = BackoffConfig {
            initial: ms(10),
            max: ms(1),
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("reconnect.max"), "{e}");
    }

    #[test]
    fn failed_first_open_is_returned_unless_deferred() {
        let failing = || -> Result<crate::camera::FileSource, CaptureError> {
            crate::camera::FileSource::open(std::path::Path::new("/nonexistent/fas-camera"))
        };
        assert!(matches!(
            Reconnect::open("x", failing, BackoffConfig::default()),
            Err(CaptureError::Open { .. })
        ));
        let clock = FakeClock::default();
        let mut r =
            Reconnect::with_clock("x", failing, BackoffConfig::default(), clock.clone(), false)
                .unwrap();
        assert!(!r.is_connected());
        let e = r.next_frame().unwrap_err();
        assert!(e.is_lost(), "{e}");
        assert!(e.to_string().contains("/nonexistent/fas-camera"), "{e}");
        assert!(r.describe().contains("lost"));
    }

    fn write_frames(dir: &std::path::Path, n: u32) {
        std::fs::create_dir_all(dir).unwrap();
        for i in 0..n {
            image::RgbImage::from_pixel(8, 6, image::Rgb([i as u8 * 40, 9, 9]))
                .save(dir.join(format!("{i:03}.png")))
                .unwrap();
        }
    }

    #[test]
    fn reopens_a_deleted_folder_with_backoff_and_keeps_one_timeline() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = tmp.path().join("frames");
        write_frames(&folder, 3);
        let clock = FakeClock::default();
        let cfg = BackoffConfig {
            initial: ms(100),
            max: ms(400),
        };
        let path = folder.clone();
        let mut r = Reconnect::with_clock(
            "frames",
            move || crate::camera::FileSource::open(&path),
            cfg,
            clock.clone(),
            true,
        )
        .unwrap();
        let f0 = r.next_frame().unwrap();
        assert_eq!(f0.seq, 0);
        std::fs::remove_dir_all(&folder).unwrap();
        let e = r.next_frame().unwrap_err();
        assert!(e.is_lost(), "{e}");
        for _ in 0..4 {
            let e = r.next_frame().unwrap_err();
            assert!(
                e.is_lost() && e.to_string().contains("re-open failed"),
                "{e}"
            );
            assert!(!r.is_connected());
        }
        assert_eq!(clock.0.borrow().1, [ms(100), ms(200), ms(400), ms(400)]);
        write_frames(&folder, 2);
        let f1 = r.next_frame().unwrap();
        assert_eq!(
            clock.0.borrow().1.len(),
            5,
            "waited out the last delay first"
        );
        assert_eq!(r.reopens(), 1);
        assert!(
            f1.seq > f0.seq && f1.t >= ms(1500),
            "{:?} {:?}",
            f1.seq,
            f1.t
        );
        let f2 = r.next_frame().unwrap();
        assert_eq!(f2.seq, f1.seq + 1);
        assert!(matches!(
            r.next_frame(),
            Err(CaptureError::EndOfInput { .. })
        ));
        assert!(matches!(
            r.next_frame(),
            Err(CaptureError::EndOfInput { .. })
        ));
        assert!(r.is_connected(), "end of input is not a loss");
        // A frame arrived since the losses, so the backoff starts over.
        std::fs::remove_dir_all(&folder).unwrap();
        let tmp2 = tempfile::tempdir().unwrap();
        let path2 = tmp2.path().join("frames");
        write_frames(&path2, 2);
        let p2 = path2.clone();
        let clock2 = FakeClock::default();
        let mut r2 = Reconnect::with_clock(
            "frames",
            move || crate::camera::FileSource::open(&p2),
            cfg,
            clock2.clone(),
            true,
        )
        .unwrap();
        std::fs::remove_dir_all(&path2).unwrap();
        assert!(r2.next_frame().unwrap_err().is_lost());
        assert!(r2.next_frame().unwrap_err().is_lost());
        write_frames(&path2, 2);
        r2.next_frame().unwrap();
        std::fs::remove_dir_all(&path2).unwrap();
        assert!(r2.next_frame().unwrap_err().is_lost());
        assert!(r2.next_frame().unwrap_err().is_lost());
        assert_eq!(clock2.0.borrow().1, [ms(100), ms(200), ms(100)]);
    }
}
