//! `fas-boards testbed`: the real fas-edge in an aarch64 QEMU guest with a V4L2 camera, a
//! GPIO relay line and a framebuffer, judged from its serial log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use fas_boards::testbed::{guest, plan, verdict};

use super::guest_bins;

#[derive(clap::Args)]
pub struct TestbedArgs {
    /// fas-edge built for aarch64-unknown-linux-musl (static); built here when absent.
    #[arg(long, requires = "testbed")]
    pub edge: Option<PathBuf>,
    /// fas-testbed built for aarch64-unknown-linux-musl (static); built here when absent.
    #[arg(long, requires = "edge")]
    pub testbed: Option<PathBuf>,
    /// Signed model bundle.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Directory with the bundle signer's `.pub` key.
    #[arg(long)]
    pub keys: PathBuf,
    /// RetinaFace ONNX (assets/retinaface_mnet025.onnx).
    #[arg(long)]
    pub detector: PathBuf,
    /// Work directory (plan, initramfs, serial log, verdict.json).
    #[arg(long, default_value = "target/testbed")]
    pub work: PathBuf,
    /// Presentations shown, in order.
    #[arg(long, default_value = "live,print,live,replay,mask")]
    pub sessions: String,
    /// Seconds each presentation stays in front of the camera.
    #[arg(long, default_value_t = 18.0)]
    pub seconds: f32,
    /// After --seconds a presentation stays in front of the camera until fas-edge has
    /// decided on its frames, at most this many seconds in all (under TCG a frame costs
    /// ~1 s on a fast host and up to ~10 s on a slow one); 0 shows each for exactly
    /// --seconds.
    #[arg(long, default_value_t = 90.0)]
    pub hold_max: f32,
    /// Seconds of empty scene between presentations (longer than the guest's policy
    /// window, so that no session spans two presentations).
    #[arg(long, default_value_t = 10.0)]
    pub gap: f32,
    /// Do not unplug the camera during the first live session.
    #[arg(long)]
    pub no_unplug: bool,
    /// SynthFAS camera seed.
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Distinct frames rendered per session (shown back and forth).
    #[arg(long, default_value_t = 12)]
    pub frames: usize,
    /// Guest CPUs.
    #[arg(long, default_value_t = 2)]
    pub smp: u32,
    /// Wall-clock limit for the guest, seconds; a hang past it fails the test.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
}

pub fn run(a: TestbedArgs) -> Result<bool> {
    std::fs::create_dir_all(&a.work).with_context(|| format!("creating {}", a.work.display()))?;
    let cache = fas_boards::debian::cache_root();
    println!(
        "testbed: Debian arm64 kernel and busybox (cache {})",
        cache.display()
    );
    let (kernel, busybox) = guest::fetch(&cache)?;
    println!("testbed: kernel {}", kernel.version);
    let plan_dir = a.work.join("plan");
    let plan = render_plan(&a, &plan_dir)?;
    let initrd = a.work.join("initrd.cpio");
    initramfs(&a, &kernel, &busybox, &plan_dir, &initrd)?;
    let serial_log = a.work.join("serial.log");
    let boot = guest::boot(
        &kernel,
        &initrd,
        &serial_log,
        &a.work.join("qmp.sock"),
        Duration::from_secs(a.timeout),
        a.smp,
    )?;
    let v = judge(&a, &plan, &boot)?;
    println!(
        "testbed: guest ran {:.1} s (serial log {})",
        boot.elapsed.as_secs_f64(),
        serial_log.display()
    );
    Ok(report(&v, &boot))
}

/// The feeder's plan: `--sessions` rendered into `plan_dir`, the first live session's
/// camera unplugged (unless `--no-unplug`).
fn render_plan(a: &TestbedArgs, plan_dir: &Path) -> Result<plan::Plan> {
    let presentations = plan::parse_presentations(&a.sessions)?;
    let unplug_session = if a.no_unplug {
        None
    } else {
        presentations
            .iter()
            .position(|p| *p == fas_core::synthfas::Presentation::Live)
    };
    let spec = plan::PlanSpec {
        width: 720,
        height: 576,
        seed: a.seed,
        presentations,
        frames_per_session: a.frames,
        seconds: a.seconds,
        gap_seconds: a.gap,
        // A negative or NaN hold is refused by the plan, not taken as "off".
        hold_max_seconds: (a.hold_max != 0.0).then_some(a.hold_max),
        unplug_session,
    };
    let plan = plan::render(&spec, plan_dir)?;
    println!(
        "testbed: rendered {} sessions at 720x576 (vivid S-Video, PAL by default)",
        plan.sessions.len()
    );
    Ok(plan)
}

/// The guest's initramfs at `initrd`: the kernel's modules, busybox, fas-edge and
/// fas-testbed (`--edge`/`--testbed`, or built here), the bundle, keys, detector and plan.
fn initramfs(
    a: &TestbedArgs,
    kernel: &guest::Kernel,
    busybox: &Path,
    plan_dir: &Path,
    initrd: &Path,
) -> Result<()> {
    let (edge, testbed) = match (&a.edge, &a.testbed) {
        (Some(e), Some(t)) => (e.clone(), t.clone()),
        _ => {
            let dir = guest_bins::build()?;
            (dir.join("fas-edge"), dir.join("fas-testbed"))
        }
    };
    guest::initramfs(
        kernel,
        busybox,
        &guest::GuestFiles {
            edge: &edge,
            testbed: &testbed,
            bundle: &a.bundle,
            keys: &a.keys,
            detector: &a.detector,
            plan_dir,
        },
        initrd,
    )?;
    let mib = std::fs::metadata(initrd)?.len() as f64 / (1 << 20) as f64;
    println!("testbed: initramfs {mib:.1} MiB; booting qemu-system-aarch64 (virt, cortex-a72, TCG, {} CPUs)", a.smp);
    Ok(())
}

/// The verdict on the run (the trigger phase's too), written to `<work>/verdict.json` and
/// printed as a table.
fn judge(a: &TestbedArgs, plan: &plan::Plan, boot: &guest::BootResult) -> Result<verdict::Verdict> {
    let log = verdict::SerialLog::parse(&boot.serial);
    let mut v = verdict::judge(plan, &log, guest::RELAY_LINE);
    let (trigger_decisions, trigger_failures) =
        verdict::judge_trigger(&log, boot.pressed, guest::TRIGGER_CAMERA);
    v.failures.extend(trigger_failures);
    println!(
        "testbed: trigger phase ({}, GPIO line {} pulsed by the host: {}): decisions {:?}",
        guest::TRIGGER_CAMERA,
        guest::TRIGGER_LINE,
        boot.pressed,
        trigger_decisions
    );
    if boot.timed_out {
        v.failures.insert(
            0,
            format!("the guest ran past {} s and was killed", a.timeout),
        );
    }
    fas_core::atomic::write_atomic(
        &a.work.join("verdict.json"),
        serde_json::to_string_pretty(&v)?.as_bytes(),
    )?;
    print!("{}", v.table());
    Ok(v)
}

/// PASS, or the serial log's last 80 lines and the failures; whether it passed.
fn report(v: &verdict::Verdict, boot: &guest::BootResult) -> bool {
    if v.passed() {
        println!("testbed: PASS");
        return true;
    }
    let tail: Vec<&str> = boot.serial.lines().rev().take(80).collect();
    eprintln!("---- serial log (last 80 lines) ----");
    for l in tail.iter().rev() {
        eprintln!("{l}");
    }
    eprintln!("---- failures ----");
    for f in &v.failures {
        eprintln!("testbed: FAIL: {f}");
    }
    false
}
