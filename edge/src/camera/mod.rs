//! Capture: where frames come from. The first pipeline stage, [`Frame`], and the
//! [`FrameSource`] backends that produce it:
//!
//! | backend | module | spec |
//! |---|---|---|
//! | V4L2 `/dev/videoN` (feature `v4l2`; without it opening fails with [`CaptureError::Unsupported`]) | [`v4l2`] | `--camera /dev/video0` |
//! | desktop webcams through nokhwa (feature `nokhwa`; AVFoundation, Media Foundation, V4L2) | [`desktop`] | `--camera nokhwa[:N]` |
//! | SynthFAS in memory | [`synthetic`] | `--camera synthetic[:seed]` |
//! | a folder of images or a video file | [`files`] | `--input PATH` |
//!
//! [`reconnect::Reconnect`] wraps any of them and re-opens a source that was lost.
//! [`convert`] turns camera pixel formats into RGB.

pub mod convert;
pub mod desktop;
pub mod files;
pub mod identity;
pub mod reconnect;
pub mod synthetic;
pub mod v4l2;

use std::time::Duration;

use fas_core::preprocess::RgbImage;

pub use convert::{ConvertError, Layout, PixelFormat};
pub use desktop::{NokhwaCamera, NokhwaConfig};
pub use files::FileSource;
pub use identity::{CameraIdentity, IdentityPin, IdentityRule};
pub use reconnect::{Backoff, BackoffConfig, Clock, Reconnect, SystemClock};
pub use synthetic::{SyntheticSource, Truth};
pub use v4l2::{V4l2Camera, V4l2Config};

/// One captured frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub image: RgbImage,
    /// Position of this frame in the source's stream, counting the frames the source
    /// dropped: consecutive frames differ by `1 + dropped_before`.
    pub seq: u64,
    /// Capture time on a monotonic clock, measured from when the source was opened.
    /// Never decreases from one frame to the next.
    pub t: Duration,
    /// Frames lost between the previous frame and this one (driver queue overruns, frames
    /// discarded as corrupt); 0 when none.
    pub dropped_before: u64,
    /// Wall-clock capture time, milliseconds since the Unix epoch: what the audit log
    /// records as the time the face was in front of the camera (a decision can come a
    /// while later on a slow board). Follows the system clock, so unlike `t` it may jump.
    pub wall_ms: u64,
}

/// Milliseconds since the Unix epoch now (0 if the clock is before 1970): the time of
/// decisions, events and the status file.
pub fn wall_ms_now() -> u64 {
    wall_ms_ago(Duration::ZERO)
}

/// Milliseconds since the Unix epoch, `age` ago (0 if the clock is before 1970).
pub fn wall_ms_ago(age: Duration) -> u64 {
    std::time::SystemTime::now()
        .checked_sub(age)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

/// Everything that can go wrong while capturing. `device` names the source (a device
/// path, a file, `synthetic:SEED`).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The source could not be opened (missing device, permission, not a camera,
    /// unreadable folder, ffmpeg/ffprobe missing). `os` keeps the OS error where there is one.
    #[error("cannot open camera {device}: {detail}")]
    Open {
        device: String,
        detail: String,
        #[source]
        os: Option<std::io::Error>,
    },
    /// None of the requested pixel formats (or no usable size) is offered.
    #[error("camera {device}: no usable format: {detail}")]
    Format { device: String, detail: String },
    /// The source was open and is gone now (unplugged: ENODEV; I/O error: EIO; the
    /// decoder process died; the folder vanished). Open it again to continue.
    #[error("camera {device} lost: {detail}")]
    Lost {
        device: String,
        detail: String,
        #[source]
        os: Option<std::io::Error>,
    },
    /// One frame was bad (short buffer, undecodable data, driver error flag, unreadable
    /// image file); the source itself is still usable.
    #[error("bad frame from {device}: {detail}")]
    Corrupt { device: String, detail: String },
    /// No frame arrived within the configured time.
    #[error("no frame from camera {device} within {after:?}")]
    Timeout { device: String, after: Duration },
    /// A finite source (files, video) has delivered all its frames.
    #[error("end of input {device} after {frames} frames")]
    EndOfInput { device: String, frames: u64 },
    /// A capture setting is out of range.
    #[error("invalid camera configuration: {field} = {value}: {reason}")]
    Config {
        field: &'static str,
        value: String,
        reason: String,
    },
    /// The backend was left out of this build.
    #[error("camera backend {backend} is not built in: {fix}")]
    Unsupported {
        backend: &'static str,
        fix: &'static str,
    },
}

impl CaptureError {
    /// Whether the source must be re-opened before it gives frames again.
    pub fn is_lost(&self) -> bool {
        matches!(self, CaptureError::Lost { .. })
    }

    pub(crate) fn corrupt(device: &str, detail: impl ToString) -> CaptureError {
        CaptureError::Corrupt {
            device: device.to_string(),
            detail: detail.to_string(),
        }
    }
}

/// A source of frames: a camera, a file, a generator.
///
/// # Contract
///
/// * `next_frame` blocks until the next frame (or an error) and never panics.
/// * Frames come in capture order: `seq` strictly increases, by `1 + dropped_before`;
///   `t` never decreases. Every frame is a valid, non-empty [`RgbImage`].
/// * Errors are typed, and none of them is ever a frame: the caller ends the current
///   decision as no-decision / deny.
///   * [`CaptureError::Corrupt`] and [`CaptureError::Timeout`]: this frame failed; the
///     next call may succeed.
///   * [`CaptureError::Lost`]: the source is gone; later calls keep failing until it is
///     opened again (a new value from the same opener; [`Reconnect`] does it with backoff).
///   * [`CaptureError::EndOfInput`]: a finite source is exhausted; later calls keep
///     returning it.
///   * [`CaptureError::Open`], [`CaptureError::Format`], [`CaptureError::Config`],
///     [`CaptureError::Unsupported`] come from opening, not from `next_frame`.
/// * `describe` names the source and its negotiated mode for logs and the overlay
///   (e.g. `/dev/video0 YUYV 640x480 @30 fps`).
pub trait FrameSource {
    /// The next frame.
    fn next_frame(&mut self) -> Result<Frame, CaptureError>;
    /// A one-line description for logs.
    fn describe(&self) -> String;
}

impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn next_frame(&mut self) -> Result<Frame, CaptureError> {
        (**self).next_frame()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Counts frames as they are delivered, keeping `seq`, `dropped_before` and `t`
/// consistent with the [`FrameSource`] contract; shared by the backends.
#[derive(Debug, Clone, Default)]
pub(crate) struct FrameCounter {
    /// The number the next frame has when nothing is dropped.
    expected: u64,
    /// The number the next frame gets when the source does not number it (skips count).
    next_seq: u64,
    last_t: Duration,
}

impl FrameCounter {
    /// A counter whose first frame is expected to be number `seq`.
    pub fn starting_at(seq: u64) -> FrameCounter {
        FrameCounter {
            expected: seq,
            next_seq: seq,
            last_t: Duration::ZERO,
        }
    }

    /// Stamps a frame that the source numbers `seq` (`None`: the next number), captured
    /// at `t`, `age` before now (the driver's timestamp against the clock now; zero for
    /// sources that make the frame on request). A `seq` below the expected one (a restarted
    /// counter) counts no drop.
    pub fn stamp(
        &mut self,
        image: RgbImage,
        seq: Option<u64>,
        t: Duration,
        age: Duration,
    ) -> Frame {
        let seq = seq.unwrap_or(self.next_seq).max(self.expected);
        let dropped_before = seq - self.expected;
        self.expected = seq + 1;
        self.next_seq = seq + 1;
        self.last_t = self.last_t.max(t);
        Frame {
            image,
            seq,
            t: self.last_t,
            dropped_before,
            wall_ms: wall_ms_ago(age),
        }
    }

    /// Notes that the next frame was skipped (e.g. discarded as corrupt), so the next
    /// delivered frame counts it as dropped.
    pub fn skip(&mut self) {
        self.next_seq += 1;
    }

    /// Number of frames delivered or skipped so far.
    pub fn count(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_keeps_seq_and_time_consistent() {
        let img = || RgbImage::black(1, 1);
        let mut c = FrameCounter::default();
        let a = c.stamp(img(), None, Duration::from_millis(10), Duration::ZERO);
        assert_eq!((a.seq, a.dropped_before), (0, 0));
        let b = c.stamp(img(), Some(4), Duration::from_millis(5), Duration::ZERO);
        assert_eq!((b.seq, b.dropped_before), (4, 3));
        assert_eq!(b.t, Duration::from_millis(10), "time never goes back");
        c.skip();
        let d = c.stamp(img(), None, Duration::from_millis(30), Duration::ZERO);
        assert_eq!((d.seq, d.dropped_before), (6, 1));
        let e = c.stamp(img(), Some(2), Duration::from_millis(40), Duration::ZERO);
        assert_eq!(
            (e.seq, e.dropped_before),
            (7, 0),
            "a restarted counter is no drop"
        );
    }

    #[test]
    fn errors_name_the_device() {
        let e = CaptureError::Lost {
            device: "/dev/video2".into(),
            detail: "VIDIOC_DQBUF".into(),
            os: Some(std::io::Error::from_raw_os_error(19)),
        };
        assert!(e.is_lost());
        assert!(e.to_string().contains("/dev/video2"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
        assert!(!CaptureError::corrupt("x", "short").is_lost());
    }
}
