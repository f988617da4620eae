//! vivid's output looped into its capture, and the feeder that plays a plan through it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fas_boards::testbed::events::{now_ms, Event};
use fas_boards::testbed::plan::{self, Plan};
use fas_boards::testbed::verdict;
use v4l::control::{Control, Value};
use v4l::video::{Capture, Output};
use v4l::{Device, Format, FourCC};

use super::emit;

const CAPTURE: &str = "/dev/video0";
const OUTPUT: &str = "/dev/video1";

/// Sets the capture's `Loop Video` control and gives the output the capture's format
/// (YUYV, same size and field order — vivid loops only identical formats).
pub fn setup() -> Result<Format> {
    let cap = Device::with_path(CAPTURE).with_context(|| format!("opening {CAPTURE}"))?;
    let ctrl = cap
        .query_controls()?
        .into_iter()
        .find(|c| c.name == "Loop Video")
        .context("vivid has no `Loop Video` control")?;
    cap.set_control(Control {
        id: ctrl.id,
        value: Value::Boolean(true),
    })
    .context("setting Loop Video")?;
    let now = Capture::format(&cap)?;
    let got = if now.fourcc == FourCC::new(b"YUYV") {
        // Already so: after a replug fas-edge may have reopened the capture and be
        // streaming from it, and a format change would then fail with EBUSY.
        now
    } else {
        let mut want = now;
        want.fourcc = FourCC::new(b"YUYV");
        Capture::set_format(&cap, &want)
            .with_context(|| format!("setting {CAPTURE} from {now} to YUYV"))?
    };
    let out = Device::with_path(OUTPUT).with_context(|| format!("opening {OUTPUT}"))?;
    let mut ofmt = Output::format(&out)?;
    ofmt.width = got.width;
    ofmt.height = got.height;
    ofmt.fourcc = got.fourcc;
    ofmt.field_order = got.field_order;
    let ogot = Output::set_format(&out, &ofmt)
        .with_context(|| format!("setting {OUTPUT} to the capture's {got}"))?;
    if (
        ogot.width,
        ogot.height,
        ogot.fourcc,
        ogot.field_order as u32,
    ) != (got.width, got.height, got.fourcc, got.field_order as u32)
    {
        bail!("vivid output took {ogot} for the capture's {got}: they must match to loop");
    }
    emit(Event::Looped {
        t_ms: now_ms(),
        width: got.width,
        height: got.height,
        fourcc: got.fourcc.str().unwrap_or("????").to_string(),
    });
    Ok(got)
}

/// Frames of one session, shown ping-pong.
struct Frames {
    data: Vec<u8>,
    size: usize,
    n: usize,
}

impl Frames {
    fn frame(&self, k: u64) -> &[u8] {
        let n = self.n as u64;
        let period = if n > 1 { 2 * (n - 1) } else { 1 };
        let p = k % period;
        let i = if p < n { p } else { period - p } as usize;
        &self.data[i * self.size..(i + 1) * self.size]
    }
}

/// Streams frames into the output node through mmap buffers: all of them are queued
/// before `STREAMON` (vivid starts its output only with two or more queued), then each new
/// frame goes into the buffer the driver hands back.
struct Feeder {
    dev: Device,
    bufs: Vec<(*mut u8, usize)>,
    queued_all: bool,
    next: usize,
}

const BUF_TYPE_OUTPUT: u32 = 2; // V4L2_BUF_TYPE_VIDEO_OUTPUT
const MEMORY_MMAP: u32 = 1;

impl Feeder {
    fn open(dev: Device, count: u32) -> Result<Feeder> {
        use v4l::v4l2;
        use v4l::v4l_sys::{v4l2_buffer, v4l2_requestbuffers};
        let fd = dev.handle().fd();
        let mut req: v4l2_requestbuffers = unsafe { std::mem::zeroed() };
        req.count = count;
        req.type_ = BUF_TYPE_OUTPUT;
        req.memory = MEMORY_MMAP;
        unsafe {
            v4l2::ioctl(
                fd,
                v4l2::vidioc::VIDIOC_REQBUFS,
                &mut req as *mut _ as *mut _,
            )
        }
        .context("VIDIOC_REQBUFS on the output node")?;
        let mut bufs = Vec::new();
        for i in 0..req.count {
            let mut b: v4l2_buffer = unsafe { std::mem::zeroed() };
            b.index = i;
            b.type_ = BUF_TYPE_OUTPUT;
            b.memory = MEMORY_MMAP;
            unsafe {
                v4l2::ioctl(
                    fd,
                    v4l2::vidioc::VIDIOC_QUERYBUF,
                    &mut b as *mut _ as *mut _,
                )
            }
            .context("VIDIOC_QUERYBUF")?;
            let len = b.length as usize;
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    b.m.offset as libc::off_t,
                )
            };
            if ptr == libc::MAP_FAILED {
                bail!(
                    "mmap of output buffer {i}: {}",
                    std::io::Error::last_os_error()
                );
            }
            bufs.push((ptr as *mut u8, len));
        }
        Ok(Feeder {
            dev,
            bufs,
            queued_all: false,
            next: 0,
        })
    }

    fn show(&mut self, frame: &[u8]) -> Result<()> {
        use v4l::v4l2;
        use v4l::v4l_sys::v4l2_buffer;
        let fd = self.dev.handle().fd();
        let index = if self.queued_all {
            let mut b: v4l2_buffer = unsafe { std::mem::zeroed() };
            b.type_ = BUF_TYPE_OUTPUT;
            b.memory = MEMORY_MMAP;
            // The device is non-blocking: wait until the driver hands a buffer back.
            loop {
                match unsafe {
                    v4l2::ioctl(fd, v4l2::vidioc::VIDIOC_DQBUF, &mut b as *mut _ as *mut _)
                } {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let mut pfd = libc::pollfd {
                            fd,
                            events: libc::POLLOUT,
                            revents: 0,
                        };
                        if unsafe { libc::poll(&mut pfd, 1, 5_000) } == 0 {
                            bail!("the output node returned no buffer within 5 s");
                        }
                    }
                    Err(e) => return Err(e).context("VIDIOC_DQBUF on the output node"),
                }
            }
            b.index as usize
        } else {
            self.next
        };
        let (ptr, len) = self.bufs[index];
        let n = frame.len().min(len);
        unsafe { std::ptr::copy_nonoverlapping(frame.as_ptr(), ptr, n) };
        let mut b: v4l2_buffer = unsafe { std::mem::zeroed() };
        b.index = index as u32;
        b.type_ = BUF_TYPE_OUTPUT;
        b.memory = MEMORY_MMAP;
        b.bytesused = n as u32;
        unsafe { v4l2::ioctl(fd, v4l2::vidioc::VIDIOC_QBUF, &mut b as *mut _ as *mut _) }
            .context("VIDIOC_QBUF on the output node")?;
        if !self.queued_all {
            self.next += 1;
            if self.next == self.bufs.len() {
                let mut t = BUF_TYPE_OUTPUT;
                unsafe {
                    v4l2::ioctl(
                        fd,
                        v4l2::vidioc::VIDIOC_STREAMON,
                        &mut t as *mut _ as *mut _,
                    )
                }
                .context("VIDIOC_STREAMON on the output node")?;
                self.queued_all = true;
            }
        }
        Ok(())
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        use v4l::v4l2;
        let mut t = BUF_TYPE_OUTPUT;
        let _ = unsafe {
            v4l2::ioctl(
                self.dev.handle().fd(),
                v4l2::vidioc::VIDIOC_STREAMOFF,
                &mut t as *mut _ as *mut _,
            )
        };
        for &(p, len) in &self.bufs {
            unsafe { libc::munmap(p as *mut _, len) };
        }
    }
}

fn empty_scene(size: usize) -> Vec<u8> {
    // Mid grey, no face.
    [110u8, 128].iter().copied().cycle().take(size).collect()
}

/// Shows `frames` for `seconds`. Returns the frames shown.
fn show_for<'a>(
    feeder: &mut Feeder,
    frames: &dyn Fn(u64) -> &'a [u8],
    seconds: f32,
) -> Result<u64> {
    show_until(feeder, frames, seconds, seconds, &|| false)
}

/// Shows `frames` for `min` seconds, then on until `done()` (asked twice a second) or until
/// `max` seconds have passed in all. Returns the frames shown.
fn show_until<'a>(
    feeder: &mut Feeder,
    frames: &dyn Fn(u64) -> &'a [u8],
    min: f32,
    max: f32,
    done: &dyn Fn() -> bool,
) -> Result<u64> {
    let t0 = Instant::now();
    let mut k = 0;
    let mut asked = t0;
    loop {
        let t = t0.elapsed();
        if t >= Duration::from_secs_f32(min) && asked.elapsed() >= Duration::from_millis(500) {
            asked = Instant::now();
            if done() {
                return Ok(k);
            }
        }
        if t >= Duration::from_secs_f32(max) {
            return Ok(k);
        }
        feeder.show(frames(k))?;
        k += 1;
    }
}

fn wait_for(paths: &[&str], limit: Duration) -> Result<()> {
    let t0 = Instant::now();
    while !paths.iter().all(|p| Path::new(p).exists()) {
        if t0.elapsed() > limit {
            bail!("{paths:?} did not appear within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Removes the camera from the system and brings it back (the platform device of vivid
/// unbound from and rebound to its driver).
fn unplug_replug(away: Duration) -> Result<()> {
    let drv = "/sys/bus/platform/drivers/vivid";
    std::fs::write(format!("{drv}/unbind"), "vivid.0").context("unbinding vivid.0")?;
    emit(Event::Unplug { t_ms: now_ms() });
    std::thread::sleep(away);
    std::fs::write(format!("{drv}/bind"), "vivid.0").context("binding vivid.0")?;
    wait_for(&[CAPTURE, OUTPUT], Duration::from_secs(20))?;
    setup()?;
    emit(Event::Replug { t_ms: now_ms() });
    Ok(())
}

/// Plays every session of the plan. With `audit` (fas-edge's audit log) and a plan that
/// holds sessions, each presentation stays up after its seconds until the log shows a
/// decision on its own frames (or the plan's longest hold has passed).
pub fn play(dir: &Path, audit: Option<&Path>) -> Result<()> {
    let plan: Plan = plan::load(dir)?;
    let size = plan.width as usize * plan.height as usize * 2;
    let empty = empty_scene(size);
    let mut i = 0;
    while i < plan.sessions.len() {
        // One device + stream per stretch between unplugs.
        let dev = Device::with_path(OUTPUT).with_context(|| format!("opening {OUTPUT}"))?;
        let fmt = Output::format(&dev)?;
        if (fmt.width, fmt.height) != (plan.width, plan.height)
            || fmt.fourcc != FourCC::new(b"YUYV")
        {
            bail!(
                "{OUTPUT} is {fmt}, the plan needs {}x{} YUYV (run `fas-testbed setup`)",
                plan.width,
                plan.height
            );
        }
        let mut feeder = Feeder::open(dev, 4)?;
        let mut unplug = None;
        while i < plan.sessions.len() {
            let s = &plan.sessions[i];
            let data = std::fs::read(dir.join(&s.file))
                .with_context(|| format!("reading {}", dir.join(&s.file).display()))?;
            if data.len() != size * s.frames {
                bail!(
                    "{}: {} bytes, expected {} frames of {size}",
                    s.file,
                    data.len(),
                    s.frames
                );
            }
            let frames = Frames {
                data,
                size,
                n: s.frames,
            };
            show_for(&mut feeder, &|_| &empty[..], plan.gap_seconds)?;
            let start = now_ms();
            emit(Event::SessionStart {
                t_ms: start,
                index: s.index,
                presentation: format!("{:?}", s.presentation).to_lowercase(),
            });
            let shown = match (s.unplug_after_s, plan.hold_max_seconds, audit) {
                (None, Some(max), Some(audit)) => {
                    let decided = || {
                        // Absent until fas-edge's first decision.
                        std::fs::read_to_string(audit)
                            .is_ok_and(|t| verdict::decided_on_frames_since(&t, start))
                    };
                    show_until(&mut feeder, &|k| frames.frame(k), s.seconds, max, &decided)?
                }
                (unplug, _, _) => {
                    let seconds = unplug.unwrap_or(s.seconds);
                    show_for(&mut feeder, &|k| frames.frame(k), seconds)?
                }
            };
            emit(Event::SessionEnd {
                t_ms: now_ms(),
                index: s.index,
                frames: shown,
            });
            i += 1;
            if s.unplug_after_s.is_some() {
                // Long enough for fas-edge to notice and close the old node, so the camera
                // comes back under the same /dev/video0.
                unplug = Some(Duration::from_secs_f32(plan.gap_seconds.max(8.0)));
                break;
            }
        }
        match unplug {
            Some(away) => {
                drop(feeder);
                unplug_replug(away)?;
            }
            None => {
                // Trailing empty scene: the last decision lands before the run ends.
                show_for(&mut feeder, &|_| &empty[..], plan.gap_seconds * 2.0)?;
            }
        }
    }
    Ok(())
}
