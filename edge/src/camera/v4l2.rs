//! V4L2 capture (`/dev/videoN`) through the `v4l` crate: format negotiation from a
//! preference list, mmap streaming, monotonic timestamps, dropped-frame accounting from the
//! driver's sequence numbers, and device loss (ENODEV, EIO, …) reported as
//! [`CaptureError::Lost`].

use std::path::PathBuf;
use std::time::Duration;

use super::convert::PixelFormat;
use super::{CaptureError, Frame, FrameSource};

/// What to ask the camera for.
#[derive(Debug, Clone, PartialEq)]
pub struct V4l2Config {
    /// Device node, e.g. `/dev/video0`.
    pub device: PathBuf,
    /// Pixel formats in order of preference; the first one the device offers is used.
    pub formats: Vec<PixelFormat>,
    /// Wanted frame size; the nearest size the device offers is used (the smallest one
    /// covering it, else the largest).
    pub width: u32,
    pub height: u32,
    /// Wanted frame rate; drivers that cannot set it keep their own.
    pub fps: u32,
    /// mmap buffers queued to the driver.
    pub buffers: u32,
    /// How long `next_frame` waits for a frame before [`CaptureError::Timeout`].
    pub timeout: Duration,
    /// Which device the door accepts (see [`super::identity`]).
    pub identity: super::IdentityRule,
}

impl Default for V4l2Config {
    fn default() -> Self {
        V4l2Config {
            device: PathBuf::from("/dev/video0"),
            formats: vec![
                PixelFormat::Yuyv,
                PixelFormat::Mjpeg,
                PixelFormat::Nv12,
                PixelFormat::Rgb24,
                PixelFormat::Bgr24,
            ],
            width: 640,
            height: 480,
            fps: 30,
            buffers: 4,
            timeout: Duration::from_secs(2),
            identity: super::IdentityRule::default(),
        }
    }
}

impl V4l2Config {
    /// Errors name the field (`camera.formats`, `camera.width`, …).
    pub fn validate(&self) -> Result<(), CaptureError> {
        let bad = |field, value: String, reason: &str| {
            Err(CaptureError::Config {
                field,
                value,
                reason: reason.to_string(),
            })
        };
        if self.formats.is_empty() {
            return bad(
                "camera.formats",
                "[]".into(),
                "list at least one pixel format",
            );
        }
        for (i, f) in self.formats.iter().enumerate() {
            if self.formats[..i].contains(f) {
                return bad("camera.formats", f.to_string(), "listed twice");
            }
        }
        for (field, v) in [("camera.width", self.width), ("camera.height", self.height)] {
            if !(1..=16384).contains(&v) {
                return bad(field, v.to_string(), "must be in 1..=16384 pixels");
            }
        }
        if !(1..=1000).contains(&self.fps) {
            return bad("camera.fps", self.fps.to_string(), "must be in 1..=1000");
        }
        if !(2..=32).contains(&self.buffers) {
            return bad(
                "camera.buffers",
                self.buffers.to_string(),
                "must be in 2..=32 (one buffer in the application, one in the driver at least)",
            );
        }
        if self.timeout < Duration::from_millis(1) || self.timeout > Duration::from_secs(600) {
            return bad(
                "camera.timeout",
                format!("{:?}", self.timeout),
                "must be between 1 ms and 10 min",
            );
        }
        Ok(())
    }
}

/// The first of `prefs` that the device `offered`; `None` when there is none.
pub fn choose_format(offered: &[[u8; 4]], prefs: &[PixelFormat]) -> Option<PixelFormat> {
    prefs.iter().copied().find(|p| {
        offered
            .iter()
            .any(|&code| PixelFormat::from_fourcc(code) == Some(*p))
    })
}

/// Frame sizes a device offers for one format (`VIDIOC_ENUM_FRAMESIZES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeRange {
    Discrete {
        width: u32,
        height: u32,
    },
    /// Every `min + k·step` up to `max` in each dimension (a step of 0 or 1: any size).
    Stepwise {
        min_width: u32,
        max_width: u32,
        step_width: u32,
        min_height: u32,
        max_height: u32,
        step_height: u32,
    },
}

impl SizeRange {
    /// The size in this range nearest to `want` (per dimension).
    fn nearest(&self, want: (u32, u32)) -> (u32, u32) {
        match *self {
            SizeRange::Discrete { width, height } => (width, height),
            SizeRange::Stepwise {
                min_width,
                max_width,
                step_width,
                min_height,
                max_height,
                step_height,
            } => (
                snap(want.0, min_width, max_width, step_width),
                snap(want.1, min_height, max_height, step_height),
            ),
        }
    }
}

fn snap(v: u32, min: u32, max: u32, step: u32) -> u32 {
    let max = max.max(min);
    let v = v.clamp(min, max);
    let step = step.max(1);
    let k = (v - min + step / 2) / step;
    let s = min.saturating_add(k.saturating_mul(step));
    if s > max {
        s - step
    } else {
        s
    }
}

/// The size to request: `want` itself if offered, else the smallest offered size covering
/// it in both dimensions, else the largest offered size; `want` when the device lists no
/// sizes (the driver then adjusts it in `VIDIOC_S_FMT`).
pub fn choose_size(offered: &[SizeRange], want: (u32, u32)) -> (u32, u32) {
    let candidates: Vec<(u32, u32)> = offered
        .iter()
        .map(|r| r.nearest(want))
        .filter(|&(w, h)| w > 0 && h > 0)
        .collect();
    if candidates.is_empty() || candidates.contains(&want) {
        return want;
    }
    let area = |&(w, h): &(u32, u32)| u64::from(w) * u64::from(h);
    candidates
        .iter()
        .filter(|&&(w, h)| w >= want.0 && h >= want.1)
        .min_by_key(|s| area(s))
        .or_else(|| candidates.iter().max_by_key(|s| area(s)))
        .copied()
        .unwrap_or(want)
}

/// Extends the driver's 32-bit buffer sequence numbers to a 64-bit frame count.
/// A jump of `n` means `n - 1` frames were dropped; a repeated or backwards number (a
/// restarted counter) counts as the next frame.
#[derive(Debug, Clone, Default)]
pub struct SequenceTracker {
    last: Option<(u32, u64)>,
}

impl SequenceTracker {
    /// The 64-bit sequence number of a buffer the driver numbered `seq`.
    pub fn observe(&mut self, seq: u32) -> u64 {
        let ext = match self.last {
            None => u64::from(seq),
            Some((last, ext)) => {
                let d = seq.wrapping_sub(last);
                if d == 0 || d > u32::MAX / 2 {
                    ext + 1
                } else {
                    ext + u64::from(d)
                }
            }
        };
        self.last = Some((seq, ext));
        ext
    }
}

#[cfg(feature = "v4l2")]
pub use device::{list_devices, V4l2Camera};
#[cfg(not(feature = "v4l2"))]
pub use disabled::{list_devices, V4l2Camera};

/// A `/dev/video*` node as `fas-edge cameras` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    pub path: PathBuf,
    /// Card and driver name (`VIDIOC_QUERYCAP`), or why the node could not be queried.
    pub name: String,
    /// Whether fas-edge can stream from it (single-planar capture with streaming I/O).
    pub capture: bool,
    /// The pixel formats it offers (four-character codes).
    pub formats: Vec<String>,
}

/// Built without the `v4l2` feature: opening says so.
#[cfg(not(feature = "v4l2"))]
mod disabled {
    use super::*;

    /// Stands in for the V4L2 camera in builds without the `v4l2` feature; it has no
    /// values, [`V4l2Camera::open`] always fails with [`CaptureError::Unsupported`].
    pub enum V4l2Camera {}

    impl V4l2Camera {
        pub fn open(cfg: &V4l2Config) -> Result<V4l2Camera, CaptureError> {
            Self::open_pinned(cfg, &super::super::IdentityPin::default())
        }

        pub fn open_pinned(
            cfg: &V4l2Config,
            _pin: &super::super::IdentityPin,
        ) -> Result<V4l2Camera, CaptureError> {
            cfg.validate()?;
            Err(CaptureError::Unsupported {
                backend: "v4l2",
                fix: "rebuild fas-edge with `--features v4l2` (needs libclang-dev at build time)",
            })
        }
    }

    /// Always [`CaptureError::Unsupported`] in this build.
    pub fn list_devices() -> Result<Vec<DeviceEntry>, CaptureError> {
        Err(CaptureError::Unsupported {
            backend: "v4l2",
            fix: "rebuild fas-edge with `--features v4l2` (needs libclang-dev at build time)",
        })
    }

    impl FrameSource for V4l2Camera {
        fn next_frame(&mut self) -> Result<Frame, CaptureError> {
            match *self {}
        }
        fn describe(&self) -> String {
            match *self {}
        }
    }
}

#[cfg(feature = "v4l2")]
mod device {
    use std::io;
    use std::time::{Duration, Instant};

    use v4l::buffer::{Flags as BufFlags, Type as BufType};
    use v4l::capability::Flags as CapFlags;
    use v4l::format::FourCC;
    use v4l::framesize::FrameSizeEnum;
    use v4l::io::mmap::Stream as MmapStream;
    use v4l::io::traits::{CaptureStream, Stream as _};
    use v4l::video::capture::Parameters;
    use v4l::video::Capture;
    use v4l::{Device, Format};

    use super::super::convert::{self, Layout, PixelFormat};
    use super::super::FrameCounter;
    use super::super::{CameraIdentity, IdentityPin};
    use super::*;

    fn open_err(device: &str, what: &str, e: io::Error) -> CaptureError {
        let hint = match e.raw_os_error() {
            Some(libc::ENOENT) => " (no such device: is the camera plugged in?)",
            Some(libc::EACCES) | Some(libc::EPERM) => {
                " (permission denied: add the user to the `video` group)"
            }
            Some(libc::EBUSY) => " (busy: another program is using the camera)",
            _ => "",
        };
        CaptureError::Open {
            device: device.to_string(),
            detail: format!("{what}{hint}"),
            os: Some(e),
        }
    }

    /// Maps an error while streaming: a timeout is [`CaptureError::Timeout`], anything else
    /// (ENODEV unplugged, EIO, EBADF, …) leaves the stream unusable: [`CaptureError::Lost`].
    pub(super) fn stream_err(device: &str, e: io::Error, timeout: Duration) -> CaptureError {
        if e.kind() == io::ErrorKind::TimedOut {
            return CaptureError::Timeout {
                device: device.to_string(),
                after: timeout,
            };
        }
        let why = match e.raw_os_error() {
            Some(libc::ENODEV) => "device removed (ENODEV)",
            Some(libc::EIO) => "I/O error (EIO)",
            Some(libc::ENXIO) => "no such device or address (ENXIO)",
            _ => "streaming failed",
        };
        CaptureError::Lost {
            device: device.to_string(),
            detail: why.to_string(),
            os: Some(e),
        }
    }

    /// A V4L2 capture device streaming through mmap buffers.
    pub struct V4l2Camera {
        device: String,
        card: String,
        layout: Layout,
        fps: Option<f64>,
        timeout: Duration,
        // Declared before `dev` so it is dropped (streaming stopped) first.
        stream: Option<MmapStream<'static>>,
        _dev: Device,
        seq: SequenceTracker,
        counter: FrameCounter,
        start_mono: Option<Duration>,
        start: Instant,
        lost: bool,
    }

    fn monotonic_now() -> Option<Duration> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec to the valid pointer it is given.
        let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        (r == 0 && ts.tv_sec >= 0 && ts.tv_nsec >= 0)
            .then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }

    impl V4l2Camera {
        /// Opens and configures the device and allocates its buffers; streaming starts with
        /// the first [`FrameSource::next_frame`].
        pub fn open(cfg: &V4l2Config) -> Result<V4l2Camera, CaptureError> {
            Self::open_pinned(cfg, &IdentityPin::default())
        }

        /// [`Self::open`], refusing a device other than the one `pin` accepted first.
        pub fn open_pinned(
            cfg: &V4l2Config,
            pin: &IdentityPin,
        ) -> Result<V4l2Camera, CaptureError> {
            cfg.validate()?;
            let device = cfg.device.display().to_string();
            let dev = Device::with_path(&cfg.device).map_err(|e| open_err(&device, "open", e))?;
            let caps = dev
                .query_caps()
                .map_err(|e| open_err(&device, "VIDIOC_QUERYCAP (not a V4L2 device?)", e))?;
            let seen = CameraIdentity {
                driver: caps.driver.clone(),
                card: caps.card.clone(),
                bus_info: caps.bus.clone(),
            };
            cfg.identity
                .check(&seen)
                .and_then(|()| pin.admit(&seen))
                .map_err(|detail| CaptureError::Open {
                    device: device.clone(),
                    detail,
                    os: None,
                })?;
            if !caps.capabilities.contains(CapFlags::VIDEO_CAPTURE)
                || !caps.capabilities.contains(CapFlags::STREAMING)
            {
                return Err(CaptureError::Open {
                    device,
                    detail: format!(
                        "{} ({}) is not a single-planar streaming capture device",
                        caps.card, caps.driver
                    ),
                    os: None,
                });
            }
            let offered: Vec<[u8; 4]> = dev
                .enum_formats()
                .map_err(|e| open_err(&device, "VIDIOC_ENUM_FMT", e))?
                .iter()
                .map(|d| d.fourcc.repr)
                .collect();
            let list = |v: &[PixelFormat]| {
                v.iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let format =
                choose_format(&offered, &cfg.formats).ok_or_else(|| CaptureError::Format {
                    device: device.clone(),
                    detail: format!(
                        "asked for [{}], the device offers [{}]",
                        list(&cfg.formats),
                        offered
                            .iter()
                            .map(|c| String::from_utf8_lossy(c).into_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
            let fourcc = FourCC::new(&format.fourcc());
            let sizes: Vec<SizeRange> = dev
                .enum_framesizes(fourcc)
                .unwrap_or_default()
                .into_iter()
                .map(|s| match s.size {
                    FrameSizeEnum::Discrete(d) => SizeRange::Discrete {
                        width: d.width,
                        height: d.height,
                    },
                    FrameSizeEnum::Stepwise(s) => SizeRange::Stepwise {
                        min_width: s.min_width,
                        max_width: s.max_width,
                        step_width: s.step_width,
                        min_height: s.min_height,
                        max_height: s.max_height,
                        step_height: s.step_height,
                    },
                })
                .collect();
            let (w, h) = choose_size(&sizes, (cfg.width, cfg.height));
            let set = dev
                .set_format(&Format::new(w, h, fourcc))
                .map_err(|e| open_err(&device, &format!("VIDIOC_S_FMT {format} {w}x{h}"), e))?;
            if set.fourcc != fourcc {
                return Err(CaptureError::Format {
                    device,
                    detail: format!(
                        "asked for {format} {w}x{h}, the driver set {}",
                        String::from_utf8_lossy(&set.fourcc.repr)
                    ),
                });
            }
            let layout = Layout {
                format,
                width: set.width,
                height: set.height,
                stride: set.stride as usize,
            };
            layout.min_len().map_err(|e| CaptureError::Format {
                device: device.clone(),
                detail: format!("the driver set an unusable layout: {e}"),
            })?;
            // Not every driver lets the rate be set; the one in effect is reported.
            let _ = dev.set_params(&Parameters::with_fps(cfg.fps));
            let fps = dev.params().ok().and_then(|p| {
                let i = p.interval;
                (i.numerator > 0 && i.denominator > 0)
                    .then(|| f64::from(i.denominator) / f64::from(i.numerator))
            });
            let mut stream = MmapStream::with_buffers(&dev, BufType::VideoCapture, cfg.buffers)
                .map_err(|e| open_err(&device, "VIDIOC_REQBUFS / mmap", e))?;
            stream.set_timeout(cfg.timeout);
            Ok(V4l2Camera {
                device,
                card: caps.card,
                layout,
                fps,
                timeout: cfg.timeout,
                stream: Some(stream),
                _dev: dev,
                seq: SequenceTracker::default(),
                counter: FrameCounter::default(),
                start_mono: monotonic_now(),
                start: Instant::now(),
                lost: false,
            })
        }

        /// The negotiated format, size and stride.
        pub fn layout(&self) -> Layout {
            self.layout
        }

        /// The frame rate in effect, where the driver reports one.
        pub fn fps(&self) -> Option<f64> {
            self.fps
        }

        fn lost(&mut self, e: CaptureError) -> CaptureError {
            if e.is_lost() {
                self.lost = true;
            }
            e
        }
    }

    impl FrameSource for V4l2Camera {
        fn next_frame(&mut self) -> Result<Frame, CaptureError> {
            if self.lost {
                return Err(CaptureError::Lost {
                    device: self.device.clone(),
                    detail: "lost earlier; open the device again".into(),
                    os: None,
                });
            }
            let Some(stream) = self.stream.as_mut() else {
                return Err(CaptureError::Lost {
                    device: self.device.clone(),
                    detail: "stream closed".into(),
                    os: None,
                });
            };
            let mut retries = 0;
            let mut skipped = 0u32;
            let (converted, meta) = loop {
                match CaptureStream::next(stream) {
                    Ok((buf, meta)) => {
                        // Always decide on the newest frame: when the pipeline is slower
                        // than the camera, older filled buffers wait in the queue and would
                        // put the door seconds behind the person in front of it. Skip to
                        // the newest (the skipped ones count as dropped by sequence).
                        if skipped < 64
                            && matches!(self._dev.handle().poll(libc::POLLIN, 0), Ok(n) if n > 0)
                        {
                            skipped += 1;
                            continue;
                        }
                        let meta = *meta;
                        let used = (meta.bytesused as usize).min(buf.len());
                        let converted = if meta.flags.contains(BufFlags::ERROR) {
                            Err("the driver flagged the buffer as corrupted".to_string())
                        } else if used == 0 {
                            Err("the driver returned an empty buffer".to_string())
                        } else {
                            convert::to_rgb(&self.layout, &buf[..used]).map_err(|e| e.to_string())
                        };
                        break (converted, meta);
                    }
                    // A signal, or a wake-up without a buffer: try again (bounded).
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                        ) && retries < 8 =>
                    {
                        retries += 1;
                    }
                    Err(e) => {
                        let err = stream_err(&self.device, e, self.timeout);
                        return Err(self.lost(err));
                    }
                }
            };
            let seq = self.seq.observe(meta.sequence);
            let image = converted
                .map_err(|d| CaptureError::corrupt(&self.device, format!("frame {seq}: {d}")))?;
            let ts = Duration::from_secs(meta.timestamp.sec.max(0) as u64)
                + Duration::from_micros(meta.timestamp.usec.max(0) as u64);
            let monotonic =
                (meta.flags & BufFlags::TIMESTAMP_MASK) == BufFlags::TIMESTAMP_MONOTONIC;
            let (t, age) = match self.start_mono {
                Some(start) if monotonic && !ts.is_zero() => (
                    ts.saturating_sub(start),
                    monotonic_now().map_or(Duration::ZERO, |now| now.saturating_sub(ts)),
                ),
                _ => (self.start.elapsed(), Duration::ZERO),
            };
            Ok(self.counter.stamp(image, Some(seq), t, age))
        }

        fn describe(&self) -> String {
            let fps = self.fps.map_or(String::new(), |f| format!(" @{f:.0} fps"));
            format!(
                "{} {} {}x{}{fps} ({})",
                self.device, self.layout.format, self.layout.width, self.layout.height, self.card
            )
        }
    }

    /// The `/dev/video*` nodes in name order, each queried for its card and formats.
    pub fn list_devices() -> Result<Vec<DeviceEntry>, CaptureError> {
        let dir = std::fs::read_dir("/dev").map_err(|e| CaptureError::Open {
            device: "/dev".into(),
            detail: "cannot list device nodes".into(),
            os: Some(e),
        })?;
        let mut paths: Vec<std::path::PathBuf> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("video"))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        paths.sort_by_key(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n["video".len()..].parse::<u32>().ok())
        });
        Ok(paths
            .into_iter()
            .map(|path| {
                let queried = Device::with_path(&path).and_then(|dev| {
                    let caps = dev.query_caps()?;
                    let formats = dev
                        .enum_formats()
                        .unwrap_or_default()
                        .iter()
                        .map(|d| String::from_utf8_lossy(&d.fourcc.repr).into_owned())
                        .collect();
                    Ok((caps, formats))
                });
                match queried {
                    Ok((caps, formats)) => DeviceEntry {
                        name: format!(
                            "{} (driver \"{}\", bus \"{}\")",
                            caps.card, caps.driver, caps.bus
                        ),
                        capture: caps.capabilities.contains(CapFlags::VIDEO_CAPTURE)
                            && caps.capabilities.contains(CapFlags::STREAMING),
                        formats,
                        path,
                    },
                    Err(e) => DeviceEntry {
                        name: format!("cannot query: {e}"),
                        capture: false,
                        formats: Vec::new(),
                        path,
                    },
                }
            })
            .collect())
    }

    impl Drop for V4l2Camera {
        fn drop(&mut self) {
            // The v4l crate panics in its own drop when VIDIOC_STREAMOFF fails with anything
            // but ENODEV; stop here first, and on such an error leak the buffers rather than
            // panic on the door.
            if let Some(mut stream) = self.stream.take() {
                match stream.stop() {
                    Ok(()) => drop(stream),
                    Err(e) if e.raw_os_error() == Some(libc::ENODEV) => drop(stream),
                    Err(_) => std::mem::forget(stream),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::FrameCounter;

    #[test]
    fn format_follows_the_preference_list() {
        let offered = [*b"MJPG", *b"YUYV"];
        let prefs = [PixelFormat::Nv12, PixelFormat::Yuyv, PixelFormat::Mjpeg];
        assert_eq!(choose_format(&offered, &prefs), Some(PixelFormat::Yuyv));
        assert_eq!(
            choose_format(&[*b"YUY2"], &[PixelFormat::Yuyv]),
            Some(PixelFormat::Yuyv)
        );
        assert_eq!(choose_format(&[*b"H264", *b"GREY"], &prefs), None);
        assert_eq!(choose_format(&offered, &[]), None);
    }

    #[test]
    fn size_choice() {
        let d = |width, height| SizeRange::Discrete { width, height };
        let sizes = [d(320, 240), d(1280, 720), d(800, 600), d(1920, 1080)];
        assert_eq!(choose_size(&sizes, (1280, 720)), (1280, 720));
        assert_eq!(
            choose_size(&sizes, (640, 480)),
            (800, 600),
            "smallest covering"
        );
        assert_eq!(
            choose_size(&sizes, (4000, 3000)),
            (1920, 1080),
            "else largest"
        );
        assert_eq!(choose_size(&[], (640, 480)), (640, 480), "driver adjusts");
        let step = SizeRange::Stepwise {
            min_width: 48,
            max_width: 1920,
            step_width: 16,
            min_height: 32,
            max_height: 1080,
            step_height: 8,
        };
        assert_eq!(choose_size(&[step], (640, 480)), (640, 480));
        assert_eq!(choose_size(&[step], (650, 3000)), (656, 1080));
        let any = SizeRange::Stepwise {
            min_width: 1,
            max_width: 100,
            step_width: 0,
            min_height: 1,
            max_height: 100,
            step_height: 0,
        };
        assert_eq!(choose_size(&[any], (37, 41)), (37, 41));
        // A step that does not divide the range never snaps past max.
        assert_eq!(snap(100, 0, 100, 30), 90);
    }

    #[test]
    fn sequence_numbers_count_drops() {
        let mut s = SequenceTracker::default();
        let mut c = FrameCounter::default();
        let img = || fas_core::preprocess::RgbImage::black(1, 1);
        let mut frames = Vec::new();
        for driver_seq in [0u32, 1, 2, 5, 6, 10] {
            let ext = s.observe(driver_seq);
            frames.push(c.stamp(img(), Some(ext), Duration::ZERO, Duration::ZERO));
        }
        let drops: Vec<u64> = frames.iter().map(|f| f.dropped_before).collect();
        assert_eq!(drops, [0, 0, 0, 2, 0, 3]);
        assert_eq!(frames.last().unwrap().seq, 10);
    }

    #[test]
    fn sequence_wraps_and_restarts() {
        let mut s = SequenceTracker::default();
        assert_eq!(s.observe(u32::MAX - 1), u64::from(u32::MAX - 1));
        assert_eq!(s.observe(u32::MAX), u64::from(u32::MAX));
        assert_eq!(s.observe(1), u64::from(u32::MAX) + 2, "wrap, one dropped");
        assert_eq!(s.observe(1), u64::from(u32::MAX) + 3, "repeat = next");
        assert_eq!(s.observe(0), u64::from(u32::MAX) + 4, "restart = next");
        let mut first = SequenceTracker::default();
        assert_eq!(
            first.observe(3),
            3,
            "frames before the first count as dropped"
        );
    }

    #[cfg(feature = "v4l2")]
    #[test]
    fn errors_map_to_lost_and_timeout() {
        use super::device::stream_err;
        use std::io;
        let t = Duration::from_millis(500);
        for errno in [libc::ENODEV, libc::EIO, libc::EBADF] {
            let e = stream_err("/dev/video0", io::Error::from_raw_os_error(errno), t);
            assert!(e.is_lost(), "{errno}: {e}");
        }
        let e = stream_err(
            "/dev/video0",
            io::Error::new(io::ErrorKind::TimedOut, "VIDIOC_DQBUF"),
            t,
        );
        assert!(matches!(e, CaptureError::Timeout { after, .. } if after == t));
    }

    #[test]
    fn config_validation_names_fields() {
        assert!(V4l2Config::default().validate().is_ok());
        type Edit = fn(&mut V4l2Config);
        let cases: [(&str, Edit); 6] = [
            ("camera.formats", |c| c.formats.clear()),
            ("camera.formats", |c| c.formats.push(PixelFormat::Yuyv)),
            ("camera.width", |c| c.width = 0),
            ("camera.fps", |c| c.fps = 0),
            ("camera.buffers", |c| c.buffers = 1),
            ("camera.timeout", |c| c.timeout = Duration::ZERO),
        ];
        for (field, edit) in cases {
            let mut c = V4l2Config::default();
            edit(&mut c);
            let e = c.validate().unwrap_err();
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
    }

    #[cfg(not(feature = "v4l2"))]
    #[test]
    fn without_the_feature_opening_says_why() {
        let e = V4l2Camera::open(&V4l2Config::default()).err().unwrap();
        assert!(matches!(e, CaptureError::Unsupported { .. }), "{e}");
        assert!(e.to_string().contains("--features v4l2"), "{e}");
    }

    #[cfg(feature = "v4l2")]
    #[test]
    fn opening_a_missing_or_non_v4l2_node_fails_cleanly() {
        let cfg = V4l2Config {
            device: "/dev/video-fas-missing".into(),
            ..V4l2Config::default()
        };
        let e = V4l2Camera::open(&cfg).err().unwrap();
        assert!(
            matches!(e, CaptureError::Open { .. }) && e.to_string().contains("video-fas-missing"),
            "{e}"
        );
        // /dev/null opens but is no V4L2 device.
        let cfg = V4l2Config {
            device: "/dev/null".into(),
            ..V4l2Config::default()
        };
        let e = V4l2Camera::open(&cfg).err().unwrap();
        assert!(e.to_string().contains("VIDIOC_QUERYCAP"), "{e}");
    }
}
