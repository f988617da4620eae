//! Desktop capture through the `nokhwa` crate (feature `nokhwa`): AVFoundation on macOS,
//! Media Foundation on Windows, V4L2 on Linux. It is there so that `fas-edge` runs on a
//! developer's laptop webcam (`--camera nokhwa:0`); a door uses [`super::v4l2`], which
//! knows the driver's sequence numbers and timestamps.
//!
//! nokhwa's `frame()` blocks without a time limit, so a capture thread owns the camera and
//! keeps only the newest frame in a one-frame slot: [`FrameSource::next_frame`] waits for
//! it with the configured timeout, a slow pipeline always judges the newest frame (the
//! frames it replaced count as dropped), and a camera that stops delivering is a
//! [`CaptureError::Timeout`] instead of a hung door. Pixel conversion is fas-edge's own
//! ([`super::convert`]), the same as for V4L2, so nokhwa's decoders are not built.

use std::time::Duration;

use super::convert::PixelFormat;
use super::v4l2::{choose_size, SizeRange, V4l2Config};
use super::{CaptureError, Frame, FrameSource};

/// What to ask a nokhwa camera for.
#[derive(Debug, Clone, PartialEq)]
pub struct NokhwaConfig {
    /// The platform's camera index (`nokhwa:N`; `fas-edge cameras` lists them).
    pub index: u32,
    /// Pixel formats in order of preference.
    pub formats: Vec<PixelFormat>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// How long `next_frame` waits for a frame before [`CaptureError::Timeout`].
    pub timeout: Duration,
}

impl NokhwaConfig {
    /// `Some(index)` when `spec` names a nokhwa camera: `nokhwa` (index 0) or `nokhwa:N`;
    /// `None` for any other spec; an error for `nokhwa:` followed by something that is
    /// not a camera index.
    pub fn parse_spec(spec: &str) -> Option<Result<u32, CaptureError>> {
        let rest = spec.strip_prefix("nokhwa")?;
        let index = match rest.strip_prefix(':') {
            None if rest.is_empty() => return Some(Ok(0)),
            None => return None,
            Some(i) => i,
        };
        Some(
            index.parse::<u32>().map_err(|_| CaptureError::Config {
                field: "camera.device",
                value: spec.to_string(),
                reason: "write nokhwa:N with N the camera index (`fas-edge cameras` lists them)"
                    .to_string(),
            }),
        )
    }

    /// The capture settings of `v` (formats, size, rate, timeout) for camera `index`.
    pub fn from_v4l2(index: u32, v: &V4l2Config) -> NokhwaConfig {
        NokhwaConfig {
            index,
            formats: v.formats.clone(),
            width: v.width,
            height: v.height,
            fps: v.fps,
            timeout: v.timeout,
        }
    }

    /// The same field checks as for V4L2 (`camera.formats`, `camera.width`, …).
    pub fn validate(&self) -> Result<(), CaptureError> {
        V4l2Config {
            device: self.label().into(),
            formats: self.formats.clone(),
            width: self.width,
            height: self.height,
            fps: self.fps,
            buffers: V4l2Config::default().buffers,
            timeout: self.timeout,
            identity: Default::default(),
        }
        .validate()
    }

    /// `nokhwa:N`, the name in logs and errors.
    pub fn label(&self) -> String {
        format!("nokhwa:{}", self.index)
    }
}

/// One capture mode a camera offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// The mode to ask for: the first preferred format offered at all; among its sizes the
/// one [`choose_size`] picks (as for V4L2); among that size's rates the slowest one at or
/// above `fps`, else the fastest. `None` when no preferred format is offered.
pub fn choose_mode(
    offered: &[Mode],
    prefs: &[PixelFormat],
    want: (u32, u32),
    fps: u32,
) -> Option<Mode> {
    let format = prefs
        .iter()
        .copied()
        .find(|p| offered.iter().any(|m| m.format == *p))?;
    let of_format: Vec<&Mode> = offered.iter().filter(|m| m.format == format).collect();
    let sizes: Vec<SizeRange> = of_format
        .iter()
        .map(|m| SizeRange::Discrete {
            width: m.width,
            height: m.height,
        })
        .collect();
    let (w, h) = choose_size(&sizes, want);
    let at_size = || {
        of_format
            .iter()
            .filter(move |m| (m.width, m.height) == (w, h))
    };
    at_size()
        .filter(|m| m.fps >= fps)
        .min_by_key(|m| m.fps)
        .or_else(|| at_size().max_by_key(|m| m.fps))
        .map(|m| **m)
}

/// A camera nokhwa can open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraEntry {
    pub index: u32,
    pub name: String,
    pub description: String,
}

#[cfg(feature = "nokhwa")]
pub use device::{list_cameras, NokhwaCamera};
#[cfg(not(feature = "nokhwa"))]
pub use disabled::{list_cameras, NokhwaCamera};

#[cfg(not(feature = "nokhwa"))]
const UNSUPPORTED: CaptureError = CaptureError::Unsupported {
    backend: "nokhwa",
    fix: "rebuild fas-edge with `--features nokhwa` (desktop webcams on macOS, Windows, Linux)",
};

/// Built without the `nokhwa` feature: opening and listing say so.
#[cfg(not(feature = "nokhwa"))]
mod disabled {
    use super::*;

    /// Stands in for the nokhwa camera in builds without the `nokhwa` feature; it has no
    /// values, [`NokhwaCamera::open`] always fails with [`CaptureError::Unsupported`].
    pub enum NokhwaCamera {}

    impl NokhwaCamera {
        pub fn open(cfg: &NokhwaConfig) -> Result<NokhwaCamera, CaptureError> {
            cfg.validate()?;
            Err(UNSUPPORTED)
        }
    }

    impl FrameSource for NokhwaCamera {
        fn next_frame(&mut self) -> Result<Frame, CaptureError> {
            match *self {}
        }
        fn describe(&self) -> String {
            match *self {}
        }
    }

    /// Always [`CaptureError::Unsupported`] in this build.
    pub fn list_cameras() -> Result<Vec<CameraEntry>, CaptureError> {
        Err(UNSUPPORTED)
    }
}

#[cfg(feature = "nokhwa")]
mod device {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    use std::thread::JoinHandle;
    use std::time::Instant;

    use ::nokhwa::utils::{
        ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
        Resolution,
    };
    use ::nokhwa::{Camera, NokhwaError};

    use super::super::convert::{self, Layout};
    use super::super::FrameCounter;
    use super::*;

    /// How long opening may take beyond the frame timeout (device enumeration, the macOS
    /// permission prompt).
    const OPEN_GRACE: Duration = Duration::from_secs(30);
    /// How long dropping the camera waits for its capture thread to let go of the device.
    const CLOSE_WAIT: Duration = Duration::from_secs(2);

    fn frame_format(f: PixelFormat) -> FrameFormat {
        match f {
            PixelFormat::Yuyv => FrameFormat::YUYV,
            PixelFormat::Nv12 => FrameFormat::NV12,
            PixelFormat::Rgb24 => FrameFormat::RAWRGB,
            PixelFormat::Bgr24 => FrameFormat::RAWBGR,
            PixelFormat::Mjpeg => FrameFormat::MJPEG,
        }
    }

    fn pixel_format(f: FrameFormat) -> Option<PixelFormat> {
        match f {
            FrameFormat::YUYV => Some(PixelFormat::Yuyv),
            FrameFormat::NV12 => Some(PixelFormat::Nv12),
            FrameFormat::RAWRGB => Some(PixelFormat::Rgb24),
            FrameFormat::RAWBGR => Some(PixelFormat::Bgr24),
            FrameFormat::MJPEG => Some(PixelFormat::Mjpeg),
            FrameFormat::GRAY => None,
        }
    }

    /// A frame as the capture thread left it, converted by the reader.
    struct Captured {
        data: Vec<u8>,
        layout: Layout,
        seq: u64,
        at: Instant,
    }

    #[derive(Default)]
    struct Slot {
        frame: Option<Captured>,
        /// Why the capture thread stopped; taken once by the reader.
        error: Option<CaptureError>,
    }

    struct Shared {
        slot: Mutex<Slot>,
        filled: Condvar,
        stop: AtomicBool,
    }

    impl Shared {
        fn lock(&self) -> MutexGuard<'_, Slot> {
            // A poisoned slot only means a panic while holding it; the data is still a
            // whole frame or none.
            self.slot.lock().unwrap_or_else(|p| p.into_inner())
        }
    }

    /// A desktop camera streaming through nokhwa on a capture thread.
    pub struct NokhwaCamera {
        label: String,
        description: String,
        timeout: Duration,
        shared: Arc<Shared>,
        thread: Option<JoinHandle<()>>,
        counter: FrameCounter,
        start: Instant,
        lost: bool,
    }

    fn open_err(label: &str, e: impl ToString) -> CaptureError {
        CaptureError::Open {
            device: label.to_string(),
            detail: e.to_string(),
            os: None,
        }
    }

    /// Asks for camera access where the platform wants it (macOS); elsewhere a no-op.
    fn authorize(label: &str) -> Result<(), CaptureError> {
        if ::nokhwa::nokhwa_check() {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel();
        ::nokhwa::nokhwa_initialize(move |granted| {
            let _ = tx.send(granted);
        });
        match rx.recv_timeout(OPEN_GRACE) {
            Ok(true) => Ok(()),
            _ => Err(open_err(
                label,
                "camera access was not granted (allow it in the system's privacy settings)",
            )),
        }
    }

    /// Opens the camera and starts its stream in the mode [`choose_mode`] picks.
    fn start(cfg: &NokhwaConfig, label: &str) -> Result<(Camera, String), CaptureError> {
        authorize(label)?;
        let wanted: Vec<FrameFormat> = cfg.formats.iter().map(|f| frame_format(*f)).collect();
        let index = CameraIndex::Index(cfg.index);
        let mut cam = Camera::new(
            index,
            RequestedFormat::with_formats(RequestedFormatType::None, &wanted),
        )
        .map_err(|e| match e {
            NokhwaError::GetPropertyError { .. } => CaptureError::Format {
                device: label.to_string(),
                detail: format!(
                    "offers none of [{}] ({e})",
                    cfg.formats
                        .iter()
                        .map(|f| f.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            e => open_err(label, e),
        })?;
        let offered: Vec<Mode> = cam
            .compatible_camera_formats()
            .map_err(|e| open_err(label, e))?
            .into_iter()
            .filter_map(|f| {
                Some(Mode {
                    format: pixel_format(f.format())?,
                    width: f.width(),
                    height: f.height(),
                    fps: f.frame_rate(),
                })
            })
            .collect();
        let mode = choose_mode(&offered, &cfg.formats, (cfg.width, cfg.height), cfg.fps)
            .ok_or_else(|| CaptureError::Format {
                device: label.to_string(),
                detail: "no mode in a requested format".into(),
            })?;
        let exact = CameraFormat::new(
            Resolution::new(mode.width, mode.height),
            frame_format(mode.format),
            mode.fps,
        );
        let only = [exact.format()];
        cam.set_camera_requset(RequestedFormat::with_formats(
            RequestedFormatType::Exact(exact),
            &only,
        ))
        .map_err(|e| CaptureError::Format {
            device: label.to_string(),
            detail: format!(
                "{} {}x{} @{} fps: {e}",
                mode.format, mode.width, mode.height, mode.fps
            ),
        })?;
        cam.open_stream().map_err(|e| open_err(label, e))?;
        let f = cam.camera_format();
        let description = format!(
            "{label} {} {}x{} @{} fps ({}, {})",
            pixel_format(f.format()).map_or_else(|| f.format().to_string(), |p| p.to_string()),
            f.width(),
            f.height(),
            f.frame_rate(),
            cam.info().human_name(),
            ::nokhwa::native_api_backend().unwrap_or(cam.backend())
        );
        Ok((cam, description))
    }

    /// The capture thread: newest frame into the slot until told to stop or the camera
    /// fails (then the failure goes into the slot as [`CaptureError::Lost`]).
    fn capture(mut cam: Camera, shared: &Shared, label: &str) {
        let mut seq = 0u64;
        while !shared.stop.load(Ordering::Relaxed) {
            let outcome = cam.frame();
            let mut slot = shared.lock();
            match outcome {
                Ok(buf) => {
                    let res = buf.resolution();
                    // A format fas-edge cannot convert (never asked for) is skipped: the
                    // next frame delivered counts it as dropped.
                    if let Some(format) = pixel_format(buf.source_frame_format()) {
                        slot.frame = Some(Captured {
                            data: buf.buffer().to_vec(),
                            layout: Layout::packed(format, res.width(), res.height()),
                            seq,
                            at: Instant::now(),
                        });
                    }
                    seq += 1;
                }
                Err(e) => {
                    slot.error = Some(CaptureError::Lost {
                        device: label.to_string(),
                        detail: e.to_string(),
                        os: None,
                    });
                    shared.filled.notify_all();
                    break;
                }
            }
            drop(slot);
            shared.filled.notify_all();
        }
        let _ = cam.stop_stream();
    }

    impl NokhwaCamera {
        /// Opens the camera on its capture thread and starts streaming; errors name the
        /// camera (`nokhwa:N`).
        pub fn open(cfg: &NokhwaConfig) -> Result<NokhwaCamera, CaptureError> {
            cfg.validate()?;
            let label = cfg.label();
            let shared = Arc::new(Shared {
                slot: Mutex::new(Slot::default()),
                filled: Condvar::new(),
                stop: AtomicBool::new(false),
            });
            let (ready_tx, ready_rx) = mpsc::channel();
            let thread = {
                let (cfg, shared, label) = (cfg.clone(), shared.clone(), label.clone());
                std::thread::Builder::new()
                    .name("fas-nokhwa".into())
                    .spawn(move || {
                        // nokhwa and the platform bindings may panic (the v4l crate
                        // does in its drop); a panic here is a lost camera, not a
                        // dead door.
                        let run = catch_unwind(AssertUnwindSafe(|| match start(&cfg, &label) {
                            Ok((cam, description)) => {
                                let _ = ready_tx.send(Ok(description));
                                capture(cam, &shared, &label);
                            }
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                            }
                        }));
                        if run.is_err() {
                            let mut slot = shared.lock();
                            slot.error = Some(CaptureError::Lost {
                                device: label,
                                detail: "the capture thread panicked".into(),
                                os: None,
                            });
                            drop(slot);
                            shared.filled.notify_all();
                        }
                    })
            }
            .map_err(|e| open_err(&label, format!("cannot start capture thread: {e}")))?;
            let description = match ready_rx.recv_timeout(cfg.timeout + OPEN_GRACE) {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    shared.stop.store(true, Ordering::Relaxed);
                    return Err(open_err(
                        &label,
                        format!("did not open within {:?}", cfg.timeout + OPEN_GRACE),
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(shared.lock().error.take().unwrap_or_else(|| {
                        open_err(&label, "the capture thread ended while opening")
                    }))
                }
            };
            Ok(NokhwaCamera {
                label,
                description,
                timeout: cfg.timeout,
                shared,
                thread: Some(thread),
                counter: FrameCounter::default(),
                start: Instant::now(),
                lost: false,
            })
        }
    }

    impl FrameSource for NokhwaCamera {
        fn next_frame(&mut self) -> Result<Frame, CaptureError> {
            if self.lost {
                return Err(CaptureError::Lost {
                    device: self.label.clone(),
                    detail: "lost earlier; open the camera again".into(),
                    os: None,
                });
            }
            let slot = self.shared.lock();
            let (mut slot, _) = self
                .shared
                .filled
                .wait_timeout_while(slot, self.timeout, |s| {
                    s.frame.is_none() && s.error.is_none()
                })
                .unwrap_or_else(|p| p.into_inner());
            // A frame that arrived before the failure is still judged.
            if let Some(c) = slot.frame.take() {
                drop(slot);
                let image = convert::to_rgb(&c.layout, &c.data).map_err(|e| {
                    CaptureError::corrupt(&self.label, format!("frame {}: {e}", c.seq))
                })?;
                let t = c.at.saturating_duration_since(self.start);
                return Ok(self.counter.stamp(image, Some(c.seq), t, c.at.elapsed()));
            }
            if let Some(e) = slot.error.take() {
                self.lost = true;
                return Err(e);
            }
            Err(CaptureError::Timeout {
                device: self.label.clone(),
                after: self.timeout,
            })
        }

        fn describe(&self) -> String {
            self.description.clone()
        }
    }

    impl Drop for NokhwaCamera {
        fn drop(&mut self) {
            self.shared.stop.store(true, Ordering::Relaxed);
            // The thread ends after its current frame; wait a little so that re-opening
            // finds the device free, but never hang the door on a camera that blocks.
            if let Some(t) = self.thread.take() {
                let until = Instant::now() + CLOSE_WAIT;
                while !t.is_finished() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if t.is_finished() {
                    let _ = t.join();
                }
            }
        }
    }

    /// The cameras the platform's nokhwa backend sees.
    pub fn list_cameras() -> Result<Vec<CameraEntry>, CaptureError> {
        authorize("nokhwa")?;
        let found = ::nokhwa::query(ApiBackend::Auto).map_err(|e| open_err("nokhwa", e))?;
        Ok(found
            .into_iter()
            .filter_map(|c| {
                let index = c.index().as_index().ok()?;
                Some(CameraEntry {
                    index,
                    name: c.human_name(),
                    description: c.description().to_string(),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_camera_index() {
        assert_eq!(NokhwaConfig::parse_spec("nokhwa").unwrap().unwrap(), 0);
        assert_eq!(NokhwaConfig::parse_spec("nokhwa:2").unwrap().unwrap(), 2);
        assert!(NokhwaConfig::parse_spec("/dev/video0").is_none());
        assert!(NokhwaConfig::parse_spec("synthetic:3").is_none());
        assert!(NokhwaConfig::parse_spec("nokhwax").is_none());
        let e = NokhwaConfig::parse_spec("nokhwa:front")
            .unwrap()
            .unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("camera.device") && s.contains("nokhwa:front"),
            "{s}"
        );
    }

    #[test]
    fn settings_are_checked_like_v4l2() {
        let v = V4l2Config::default();
        let mut c = NokhwaConfig::from_v4l2(1, &v);
        assert_eq!((c.width, c.height, c.fps), (v.width, v.height, v.fps));
        c.validate().unwrap();
        c.fps = 0;
        assert!(c.validate().unwrap_err().to_string().contains("camera.fps"));
        c.fps = 30;
        c.formats.clear();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("camera.formats"));
    }

    fn m(format: PixelFormat, width: u32, height: u32, fps: u32) -> Mode {
        Mode {
            format,
            width,
            height,
            fps,
        }
    }

    #[test]
    fn mode_follows_format_preference_then_size_then_rate() {
        use PixelFormat::*;
        let offered = [
            m(Mjpeg, 640, 480, 30),
            m(Yuyv, 1280, 720, 10),
            m(Yuyv, 640, 480, 15),
            m(Yuyv, 640, 480, 30),
            m(Yuyv, 640, 480, 60),
        ];
        // YUYV first: 640×480 offered; the slowest rate at or above 30.
        assert_eq!(
            choose_mode(&offered, &[Yuyv, Mjpeg], (640, 480), 30),
            Some(m(Yuyv, 640, 480, 30))
        );
        assert_eq!(
            choose_mode(&offered, &[Yuyv], (640, 480), 45),
            Some(m(Yuyv, 640, 480, 60))
        );
        // Nothing fast enough: the fastest there is.
        assert_eq!(
            choose_mode(&offered, &[Yuyv], (1280, 720), 30),
            Some(m(Yuyv, 1280, 720, 10))
        );
        // A size between offered ones: the smallest covering it.
        assert_eq!(
            choose_mode(&offered, &[Yuyv], (800, 600), 30),
            Some(m(Yuyv, 1280, 720, 10))
        );
        // Preference order wins over what comes first in the list.
        assert_eq!(
            choose_mode(&offered, &[Mjpeg, Yuyv], (640, 480), 30),
            Some(m(Mjpeg, 640, 480, 30))
        );
        assert_eq!(choose_mode(&offered, &[Nv12, Rgb24], (640, 480), 30), None);
        assert_eq!(choose_mode(&[], &[Yuyv], (640, 480), 30), None);
    }

    #[cfg(not(feature = "nokhwa"))]
    #[test]
    fn without_the_feature_opening_says_how_to_get_it() {
        let c = NokhwaConfig::from_v4l2(0, &V4l2Config::default());
        let e = NokhwaCamera::open(&c).err().unwrap();
        assert!(e.to_string().contains("--features nokhwa"), "{e}");
        assert!(list_cameras().is_err());
    }

    /// On a machine without cameras (CI), opening a camera that is not there fails with
    /// an error naming it, promptly, instead of hanging or handing out frames.
    #[cfg(all(feature = "nokhwa", target_os = "linux"))]
    #[test]
    fn a_missing_camera_is_an_open_error_naming_it() {
        let mut c = NokhwaConfig::from_v4l2(0, &V4l2Config::default());
        c.index = 4000;
        let t = std::time::Instant::now();
        let e = NokhwaCamera::open(&c).err().unwrap();
        assert!(matches!(e, CaptureError::Open { .. }), "{e}");
        assert!(e.to_string().contains("nokhwa:4000"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }
}
