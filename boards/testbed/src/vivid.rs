//! vivid's output looped into its capture, and the feeder that plays a plan through it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fas_boards::testbed::events::{now_ms, Event};
use fas_boards::testbed::plan::{self, Plan};
use v4l::control::{Control, Value};
use v4l::video::{Capture, Output};
use v4l::{Device, FourCC, Format};

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
    cap.set_control(Control { id: ctrl.id, value: Value::Boolean(true) })
        .context("setting Loop Video")?;
    let mut want = Capture::format(&cap)?;
    want.fourcc = FourCC::new(b"YUYV");
    let got = Capture::set_format(&cap, &want)?;
    let out = Device::with_path(OUTPUT).with_context(|| format!("opening {OUTPUT}"))?;
    let mut ofmt = Output::format(&out)?;
    ofmt.width = got.width;
    ofmt.height = got.height;
    ofmt.fourcc = got.fourcc;
    ofmt.field_order = got.field_order;
    let ogot = Output::set_format(&out, &ofmt)?;
    if (ogot.width, ogot.height, ogot.fourcc, ogot.field_order as u32)
        != (got.width, got.height, got.fourcc, got.field_order as u32)
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

/// Writes frames to the output node with `write()` (vb2's file I/O keeps several buffers
/// queued, which vivid needs before it starts streaming; each write is one frame).
struct Feeder {
    out: std::fs::File,
}

impl Feeder {
    fn show(&mut self, frame: &[u8]) -> Result<()> {
        use std::io::Write;
        self.out.write_all(frame).context("writing a frame to the output node")?;
        Ok(())
    }
}

fn empty_scene(size: usize) -> Vec<u8> {
    // Mid grey, no face.
    [110u8, 128].iter().copied().cycle().take(size).collect()
}

fn show_for(feeder: &mut Feeder, frames: &dyn Fn(u64) -> Vec<u8>, seconds: f32) -> Result<u64> {
    let t0 = Instant::now();
    let mut k = 0;
    while t0.elapsed() < Duration::from_secs_f32(seconds) {
        feeder.show(&frames(k))?;
        k += 1;
    }
    Ok(k)
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

/// Plays every session of the plan.
pub fn play(dir: &Path) -> Result<()> {
    let plan: Plan = plan::load(dir)?;
    let size = plan.width as usize * plan.height as usize * 2;
    let empty = empty_scene(size);
    let mut i = 0;
    while i < plan.sessions.len() {
        // One device + stream per stretch between unplugs.
        let dev = Device::with_path(OUTPUT).with_context(|| format!("opening {OUTPUT}"))?;
        let fmt = Output::format(&dev)?;
        if (fmt.width, fmt.height) != (plan.width, plan.height) || fmt.fourcc != FourCC::new(b"YUYV") {
            bail!("{OUTPUT} is {fmt}, the plan needs {}x{} YUYV (run `fas-testbed setup`)", plan.width, plan.height);
        }
        let out = std::fs::OpenOptions::new()
            .write(true)
            .open(OUTPUT)
            .with_context(|| format!("opening {OUTPUT} for writing"))?;
        let mut feeder = Feeder { out };
        let mut unplug = None;
        while i < plan.sessions.len() {
            let s = &plan.sessions[i];
            let data = std::fs::read(dir.join(&s.file))
                .with_context(|| format!("reading {}", dir.join(&s.file).display()))?;
            if data.len() != size * s.frames {
                bail!("{}: {} bytes, expected {} frames of {size}", s.file, data.len(), s.frames);
            }
            let frames = Frames { data, size, n: s.frames };
            show_for(&mut feeder, &|_| empty.clone(), plan.gap_seconds)?;
            emit(Event::SessionStart {
                t_ms: now_ms(),
                index: s.index,
                presentation: format!("{:?}", s.presentation).to_lowercase(),
            });
            let seconds = s.unplug_after_s.unwrap_or(s.seconds);
            let shown = show_for(&mut feeder, &|k| frames.frame(k).to_vec(), seconds)?;
            emit(Event::SessionEnd { t_ms: now_ms(), index: s.index, frames: shown });
            i += 1;
            if s.unplug_after_s.is_some() {
                unplug = Some(Duration::from_secs_f32(plan.gap_seconds.max(3.0)));
                break;
            }
        }
        match unplug {
            Some(away) => {
                drop(feeder);
                drop(dev);
                unplug_replug(away)?;
            }
            None => {
                // Trailing empty scene: the last decision lands before the run ends.
                show_for(&mut feeder, &|_| empty.clone(), plan.gap_seconds * 2.0)?;
            }
        }
    }
    Ok(())
}
