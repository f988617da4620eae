//! `fas-boards`: board profiles, cross builds, packages and images for fas-edge, and the
//! real-device test in a QEMU guest.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use fas_boards::profile::Profile;
use fas_boards::testbed::{guest, plan, verdict};
use fas_boards::{cross, deb, flash, image, image_boot, jetson, raspi4b, stage};

#[derive(Parser)]
#[command(name = "fas-boards", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Lists the built-in board profiles.
    List,
    /// Prints a board profile and the fas-edge config it implies.
    Show {
        /// Board name (`fas-boards list`) or the path of a profile .toml.
        board: String,
    },
    /// Cross-compiles fas-edge for a board and stages it with its config, systemd unit and
    /// udev rules; `--deb` also packages it.
    Build(BuildArgs),
    /// Runs the real fas-edge in an aarch64 QEMU guest with a real V4L2 camera (vivid,
    /// fed SynthFAS sessions), a PL061 GPIO relay line and a virtio-gpu framebuffer, and
    /// checks its decisions, the relay, the framebuffer and the audit log.
    Testbed(TestbedArgs),
    /// Makes a board's image: a flashable SD image (`<out>/fas-<board>.img`, boards with
    /// image = "sd") or a rootfs overlay tarball + install.sh (image = "overlay", Jetson).
    Image(ImageArgs),
    /// Boots an SD image under qemu-system-aarch64 `-M virt` (the image as a virtio disk,
    /// kernel, initramfs and cmdline.txt from its own boot partition) and checks that its
    /// init starts fas-edge and that fas-edge, with no camera, either reports ready and
    /// waits for one with the door locked or stops fail-closed and is restarted.
    CheckImage(CheckImageArgs),
    /// Boots an SD image on QEMU's Raspberry Pi 4B model (`-M raspi4b`; bookworm-backports'
    /// QEMU is fetched into the fas cache when the host's lacks it) from its own kernel,
    /// initramfs and device tree (patched for what QEMU's BCM2711 lacks, with /dev/fb0 on
    /// QEMU's framebuffer), and passes only when fas-edge reports ready and waits for the
    /// absent camera with the relay line held locked and never driven open. The image needs
    /// a signed bundle, its keys, the detector and the face-embedding network (`fas-boards
    /// image --bundle --keys --detector --face-model`).
    CheckRaspi4b(CheckRaspi4bArgs),
    /// Builds the static aarch64 (musl, debug) fas-edge and fas-testbed that the guest
    /// test and the SD image use, and prints their directory (`cargo xtask test` runs it
    /// before the tests, which must not run cargo themselves).
    GuestBins,
    /// Writes an image to an SD card or USB drive and reads it back. Refuses mounted,
    /// non-removable, system and too-small disks.
    Flash(FlashArgs),
}

#[derive(clap::Args)]
struct ImageArgs {
    /// Board name (`fas-boards list`) or the path of a profile .toml.
    #[arg(long)]
    board: String,
    /// fas-edge built for aarch64-unknown-linux-musl (static); built here (debug) when absent.
    #[arg(long)]
    edge: Option<PathBuf>,
    /// Signed model bundle to install as /etc/fas/model.fasb (with --keys).
    #[arg(long, requires = "keys")]
    bundle: Option<PathBuf>,
    /// Directory of the bundle signer's `.pub` key(s).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// RetinaFace ONNX to install.
    #[arg(long)]
    detector: Option<PathBuf>,
    /// Face-embedding network (dlib ResNet ONNX, assets/dlib_face_resnet.onnx) to install
    /// where the board's config looks for it (`access.face_model`): the boards' access
    /// mode, "credential+face", does not start without it.
    #[arg(long, value_name = "PATH")]
    face_model: Option<PathBuf>,
    /// Directory holding mtcnn_pnet.onnx, mtcnn_rnet.onnx and mtcnn_onet.onnx (assets/),
    /// installed beside the detector for `detector.kind = "mtcnn"`.
    #[arg(long, value_name = "DIR")]
    mtcnn_dir: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "target/boards")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct CheckImageArgs {
    /// The SD image (`fas-boards image --board rpi4`).
    #[arg(long)]
    image: PathBuf,
    /// Work directory (kernel, initramfs, serial log).
    #[arg(long, default_value = "target/image-check")]
    work: PathBuf,
    /// Wall-clock limit for the guest, seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

#[derive(clap::Args)]
struct CheckRaspi4bArgs {
    /// The SD image (`fas-boards image --board rpi4 --bundle B --keys K --detector D
    /// --face-model F`).
    #[arg(long)]
    image: PathBuf,
    /// The board profile the image was made for (its relay line is read from the GPIO).
    #[arg(long, default_value = "rpi4")]
    board: String,
    /// Work directory (kernel, initramfs, patched DTB, SD card copy, serial log).
    #[arg(long, default_value = "target/raspi4b-check")]
    work: PathBuf,
    /// Wall-clock limit for the guest, seconds.
    #[arg(long, default_value_t = 240)]
    timeout: u64,
}

#[derive(clap::Args)]
struct FlashArgs {
    /// The image to write.
    #[arg(long)]
    image: PathBuf,
    /// The whole disk to overwrite (/dev/sdX, /dev/mmcblkN, /dev/disk/by-id/...).
    #[arg(long)]
    device: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
    /// Let --device be an existing regular file instead of a disk (tests, copies); no
    /// disk checks apply to it.
    #[arg(long)]
    allow_file: bool,
}

#[derive(clap::Args)]
struct BuildArgs {
    /// Board name (`fas-boards list`) or the path of a profile .toml.
    #[arg(long)]
    board: String,
    /// Optimised build (`--release`: thin LTO).
    #[arg(long)]
    release: bool,
    /// `-C target-cpu=` the board's CPU (rebuilds every dependency for it).
    #[arg(long)]
    tune: bool,
    /// Output directory (`<out>/<board>/...`).
    #[arg(long, default_value = "target/boards")]
    out: PathBuf,
    /// Also build the .deb.
    #[arg(long)]
    deb: bool,
    /// Ship this RetinaFace ONNX in the package.
    #[arg(long)]
    detector: Option<PathBuf>,
    /// Ship this face-embedding network (dlib ResNet ONNX, assets/dlib_face_resnet.onnx) in
    /// the package, as /usr/share/fas/dlib_face_resnet.onnx (`access.face_model`); the
    /// boards' access mode, "credential+face", does not start without it.
    #[arg(long, value_name = "PATH")]
    face_model: Option<PathBuf>,
    /// Ship MTCNN's three ONNX files from this directory in the package.
    #[arg(long, value_name = "DIR")]
    mtcnn_dir: Option<PathBuf>,
    /// Ship this signed bundle in the package (with --keys).
    #[arg(long, requires = "keys")]
    bundle: Option<PathBuf>,
    /// Directory of the bundle signer's `.pub` key(s).
    #[arg(long)]
    keys: Option<PathBuf>,
}

#[derive(clap::Args)]
struct TestbedArgs {
    /// fas-edge built for aarch64-unknown-linux-musl (static); built here when absent.
    #[arg(long, requires = "testbed")]
    edge: Option<PathBuf>,
    /// fas-testbed built for aarch64-unknown-linux-musl (static); built here when absent.
    #[arg(long, requires = "edge")]
    testbed: Option<PathBuf>,
    /// Signed model bundle.
    #[arg(long)]
    bundle: PathBuf,
    /// Directory with the bundle signer's `.pub` key.
    #[arg(long)]
    keys: PathBuf,
    /// RetinaFace ONNX (assets/retinaface_mnet025.onnx).
    #[arg(long)]
    detector: PathBuf,
    /// Work directory (plan, initramfs, serial log, verdict.json).
    #[arg(long, default_value = "target/testbed")]
    work: PathBuf,
    /// Presentations shown, in order.
    #[arg(long, default_value = "live,print,live,replay,mask")]
    sessions: String,
    /// Seconds each presentation stays in front of the camera.
    #[arg(long, default_value_t = 18.0)]
    seconds: f32,
    /// After --seconds a presentation stays in front of the camera until fas-edge has
    /// decided on its frames, at most this many seconds in all (under TCG a frame costs
    /// ~1 s on a fast host and up to ~10 s on a slow one); 0 shows each for exactly
    /// --seconds.
    #[arg(long, default_value_t = 90.0)]
    hold_max: f32,
    /// Seconds of empty scene between presentations (longer than the guest's policy
    /// window, so that no session spans two presentations).
    #[arg(long, default_value_t = 10.0)]
    gap: f32,
    /// Do not unplug the camera during the first live session.
    #[arg(long)]
    no_unplug: bool,
    /// SynthFAS camera seed.
    #[arg(long, default_value_t = 11)]
    seed: u64,
    /// Distinct frames rendered per session (shown back and forth).
    #[arg(long, default_value_t = 12)]
    frames: usize,
    /// Guest CPUs.
    #[arg(long, default_value_t = 2)]
    smp: u32,
    /// Wall-clock limit for the guest, seconds; a hang past it fails the test.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fas-boards: error: {}", fas_core::report::chain(&*e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    match cli.cmd {
        Cmd::List => {
            for name in fas_boards::profile::names() {
                let p = Profile::load(name)?;
                println!("{name:<18} {:<28} {}", p.target, p.description);
            }
            Ok(true)
        }
        Cmd::Show { board } => {
            let p = Profile::load(&board)?;
            println!("{}", toml::to_string_pretty(&p)?);
            println!("# /etc/fas/edge.toml for this board:\n{}", p.edge_config());
            Ok(true)
        }
        Cmd::Build(a) => build(a),
        Cmd::Testbed(a) => testbed(a),
        Cmd::GuestBins => guest_bins().map(|d| {
            println!("{}", d.display());
            true
        }),
        Cmd::Image(a) => image(a),
        Cmd::CheckImage(a) => check_image(a),
        Cmd::CheckRaspi4b(a) => check_raspi4b(a),
        Cmd::Flash(a) => flash(a),
    }
}

/// The static aarch64 fas-edge + fas-testbed (one build of both, so their features unify
/// the same way every time and neither rebuilds the other).
fn guest_bins() -> Result<PathBuf> {
    let profile = Profile::load("qemu-virt")?;
    cross::build(
        &workspace_root()?,
        &profile,
        &cross::BuildOptions {
            release: false,
            tune: false,
            packages: &["fas-edge", "fas-testbed"],
            // The trigger phase captures through the desktop backend (nokhwa).
            features: &["fas-edge/nokhwa"],
            target_dir: None,
        },
    )
}

fn workspace_root() -> Result<PathBuf> {
    let mut d = std::env::current_dir()?;
    loop {
        if d.join("Cargo.toml").exists() && d.join("edge/Cargo.toml").exists() {
            return Ok(d);
        }
        if !d.pop() {
            anyhow::bail!(
                "run fas-boards inside the fas workspace (it builds fas-edge from source)"
            );
        }
    }
}

fn build(a: BuildArgs) -> Result<bool> {
    let profile = Profile::load(&a.board)?;
    if a.deb {
        // Before the cross build: a wrong path should not cost one.
        check_models(a.detector.as_deref(), a.face_model.as_deref())?;
    }
    let root = workspace_root()?;
    let bin_dir = cross::build(
        &root,
        &profile,
        &cross::BuildOptions {
            release: a.release,
            tune: a.tune,
            packages: &["fas-edge"],
            features: &[],
            target_dir: None,
        },
    )?;
    let out = a.out.join(&profile.name);
    std::fs::create_dir_all(&out)?;
    let edge = out.join("fas-edge");
    std::fs::copy(bin_dir.join("fas-edge"), &edge)
        .with_context(|| format!("copying {}", bin_dir.join("fas-edge").display()))?;
    fas_core::atomic::write_atomic(&out.join("edge.toml"), profile.edge_config().as_bytes())?;
    fas_core::atomic::write_atomic(
        &out.join("fas-edge.service"),
        deb::systemd_unit().as_bytes(),
    )?;
    fas_core::atomic::write_atomic(&out.join("60-fas-edge.rules"), deb::udev_rules().as_bytes())?;
    let size = std::fs::metadata(&edge)?.len();
    println!(
        "fas-boards: {} ({:.1} MiB), edge.toml, fas-edge.service, 60-fas-edge.rules in {}",
        edge.display(),
        size as f64 / 1048576.0,
        out.display()
    );
    if a.deb {
        let path = deb::build(
            &profile,
            &deb::DebInputs {
                edge_binary: &edge,
                detector: a.detector.as_deref(),
                face_model: a.face_model.as_deref(),
                mtcnn: a.mtcnn_dir.as_deref(),
                bundle: a.bundle.as_deref(),
                keys: a.keys.as_deref(),
                version: env!("CARGO_PKG_VERSION"),
            },
            &out,
        )?;
        println!(
            "fas-boards: package {} ({:.1} MiB)",
            path.display(),
            std::fs::metadata(&path)?.len() as f64 / 1048576.0
        );
    }
    Ok(true)
}

fn testbed(a: TestbedArgs) -> Result<bool> {
    std::fs::create_dir_all(&a.work).with_context(|| format!("creating {}", a.work.display()))?;
    let cache = fas_boards::debian::cache_root();
    println!(
        "testbed: Debian arm64 kernel and busybox (cache {})",
        cache.display()
    );
    let (kernel, busybox) = guest::fetch(&cache)?;
    println!("testbed: kernel {}", kernel.version);
    let presentations = plan::parse_presentations(&a.sessions)?;
    let unplug_session = if a.no_unplug {
        None
    } else {
        presentations
            .iter()
            .position(|p| *p == fas_core::synthfas::Presentation::Live)
    };
    let plan_dir = a.work.join("plan");
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
    let plan = plan::render(&spec, &plan_dir)?;
    println!(
        "testbed: rendered {} sessions at 720x576 (vivid S-Video, PAL by default)",
        plan.sessions.len()
    );
    let (edge, testbed) = match (a.edge, a.testbed) {
        (Some(e), Some(t)) => (e, t),
        _ => {
            let dir = guest_bins()?;
            (dir.join("fas-edge"), dir.join("fas-testbed"))
        }
    };
    let initrd = a.work.join("initrd.cpio");
    guest::initramfs(
        &kernel,
        &busybox,
        &guest::GuestFiles {
            edge: &edge,
            testbed: &testbed,
            bundle: &a.bundle,
            keys: &a.keys,
            detector: &a.detector,
            plan_dir: &plan_dir,
        },
        &initrd,
    )?;
    let mib = std::fs::metadata(&initrd)?.len() as f64 / (1 << 20) as f64;
    println!("testbed: initramfs {mib:.1} MiB; booting qemu-system-aarch64 (virt, cortex-a72, TCG, {} CPUs)", a.smp);
    let serial_log = a.work.join("serial.log");
    let boot = guest::boot(
        &kernel,
        &initrd,
        &serial_log,
        &a.work.join("qmp.sock"),
        Duration::from_secs(a.timeout),
        a.smp,
    )?;
    let log = verdict::SerialLog::parse(&boot.serial);
    let mut v = verdict::judge(&plan, &log, guest::RELAY_LINE);
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
    println!(
        "testbed: guest ran {:.1} s (serial log {})",
        boot.elapsed.as_secs_f64(),
        serial_log.display()
    );
    if v.passed() {
        println!("testbed: PASS");
        Ok(true)
    } else {
        let tail: Vec<&str> = boot.serial.lines().rev().take(80).collect();
        eprintln!("---- serial log (last 80 lines) ----");
        for l in tail.iter().rev() {
            eprintln!("{l}");
        }
        eprintln!("---- failures ----");
        for f in &v.failures {
            eprintln!("testbed: FAIL: {f}");
        }
        Ok(false)
    }
}

fn mib(n: u64) -> f64 {
    n as f64 / 1048576.0
}

/// Checks the detector and face-embedding network given for a package or image, and says
/// which of the two the board's fas-edge will lack (its config loads both at start).
fn check_models(detector: Option<&Path>, face_model: Option<&Path>) -> Result<()> {
    const SETUP: &str = "`cargo xtask setup` puts it in assets/";
    if let Some(d) = detector {
        stage::check_model_file(
            d,
            "--detector",
            &format!("pass the RetinaFace ONNX (retinaface_mnet025.onnx; {SETUP})"),
        )?;
    }
    if let Some(f) = face_model {
        stage::check_model_file(
            f,
            "--face-model",
            &format!(
                "pass the face-embedding ONNX ({}; {SETUP})",
                stage::FACE_MODEL_FILE
            ),
        )?;
    }
    for (given, flag, what) in [
        (detector.is_some(), "--detector", "the face detector"),
        (
            face_model.is_some(),
            "--face-model",
            "the face-embedding network",
        ),
    ] {
        if !given {
            eprintln!(
                "fas-boards: warning: no {flag}: this fas-edge will not start until {what} is installed where its config points (or pass {flag} PATH)"
            );
        }
    }
    Ok(())
}

fn image(a: ImageArgs) -> Result<bool> {
    let profile = Profile::load(&a.board)?;
    check_models(a.detector.as_deref(), a.face_model.as_deref())?;
    let edge = match a.edge {
        Some(e) => e,
        None => {
            // The image's root has no C library: fas-edge is always the static musl build
            // (the same build as the guest test's).
            guest_bins()?.join("fas-edge")
        }
    };
    let files = image::EdgeFiles {
        edge: &edge,
        bundle: a.bundle.as_deref(),
        keys: a.keys.as_deref(),
        detector: a.detector.as_deref(),
        face_model: a.face_model.as_deref(),
        mtcnn: a.mtcnn_dir.as_deref(),
    };
    match profile.image {
        fas_boards::profile::ImageKind::Overlay => {
            let o = jetson::build_overlay(&profile, &files, &a.out)?;
            println!(
                "fas-boards: {} ({:.1} MiB, {} files) and {}",
                o.tarball.display(),
                mib(std::fs::metadata(&o.tarball)?.len()),
                o.files.len(),
                o.install_sh.display()
            );
            Ok(true)
        }
        _ => {
            let cache = fas_boards::debian::cache_root();
            println!(
                "fas-boards: SD image for {} (Debian packages cached in {})",
                profile.name,
                cache.display()
            );
            let img = image::build_sd(&profile, &cache, &files, &a.out)?;
            println!(
                "fas-boards: kernel {}; initramfs loads {} modules ({} built in: {})",
                img.kernel_version,
                img.modules.len(),
                img.builtin.len(),
                img.builtin.join(", ")
            );
            println!(
                "fas-boards: p1 boot FAT32 {:.0} MiB ({:.1} MiB used), p2 root ext4 {:.0} MiB ({:.1} MiB used)",
                mib(img.boot.len_bytes()),
                mib(img.boot_content),
                mib(img.root.len_bytes()),
                mib(img.root_content)
            );
            println!(
                "fas-boards: {} {:.0} MiB, built in {:.1} s",
                img.path.display(),
                mib(img.image_bytes),
                img.elapsed.as_secs_f64()
            );
            Ok(true)
        }
    }
}

fn check_image(a: CheckImageArgs) -> Result<bool> {
    let boot = image_boot::boot_virt(
        &a.image,
        &a.work,
        Duration::from_secs(a.timeout),
        |serial| {
            let c = image_boot::BootChain::parse(serial);
            c.starts >= 2 || (c.ready && c.camera_waiting)
        },
    )?;
    let chain = image_boot::BootChain::parse(&boot.serial);
    // Either fas-edge came up and waits for the (absent) camera with the door locked, or a
    // start-up error stopped it fail-closed and the init restarted it.
    let mut failures = if chain.ready && chain.camera_waiting {
        chain.boot_failures()
    } else {
        chain.failures()
    };
    if boot.timed_out {
        failures.insert(0, format!("the guest ran past {} s", a.timeout));
    }
    println!(
        "check-image: root {:?}, fas-edge started {} time(s), exits {:?}, first start after {:.1} s, ran {:.1} s",
        chain.root_device,
        chain.starts,
        chain.exits,
        boot.first_start_s.unwrap_or(f64::NAN),
        boot.elapsed.as_secs_f64()
    );
    for e in &chain.edge_errors {
        println!("check-image: {e}");
    }
    if failures.is_empty() {
        println!("check-image: PASS");
        return Ok(true);
    }
    eprintln!("---- serial log ----\n{}", boot.serial);
    for f in failures {
        eprintln!("check-image: FAIL: {f}");
    }
    Ok(false)
}

fn check_raspi4b(a: CheckRaspi4bArgs) -> Result<bool> {
    let relay = raspi4b::RelayPin::from_profile(&Profile::load(&a.board)?)?;
    let cache = fas_boards::debian::cache_root();
    let qemu = raspi4b::Qemu::find_or_fetch(&cache)?;
    println!(
        "check-raspi4b: {} ({}); relay BCM GPIO {}",
        qemu.version,
        qemu.program.display(),
        relay.line
    );
    let limit = Duration::from_secs(a.timeout);
    let boot = raspi4b::boot(
        &qemu,
        &a.image,
        &a.work,
        relay,
        limit,
        Duration::from_secs(2),
        |serial| {
            let c = image_boot::BootChain::parse(serial);
            (c.ready && c.camera_waiting) || !c.exits.is_empty()
        },
    )?;
    let chain = image_boot::BootChain::parse(&boot.serial);
    let failures = raspi4b::failures(&boot, &chain, limit);
    let secs = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.1} s"));
    println!(
        "check-raspi4b: root {:?}; fas-edge started after {} (guest clock {}), ready after {}; relay read {} times, last {:?}; ran {:.1} s",
        chain.root_device,
        secs(boot.first_start_s),
        secs(boot.first_start_guest_s),
        secs(boot.ready_s),
        boot.relay.len(),
        boot.relay.last().map(|s| s.state),
        boot.elapsed.as_secs_f64()
    );
    for m in &chain.models {
        println!("check-raspi4b: {m}");
    }
    if failures.is_empty() {
        println!("check-raspi4b: PASS");
        return Ok(true);
    }
    eprintln!("---- serial log ----\n{}", boot.serial);
    for f in failures {
        eprintln!("check-raspi4b: FAIL: {f}");
    }
    Ok(false)
}

fn flash(a: FlashArgs) -> Result<bool> {
    use std::io::Write;
    let image_bytes = std::fs::metadata(&a.image)
        .with_context(|| format!("reading {}", a.image.display()))?
        .len();
    let target = flash::check_target(&a.device, image_bytes, a.allow_file)?;
    match &target {
        flash::Target::Device(d) => {
            println!(
                "fas-boards: will overwrite, with {} ({:.0} MiB):",
                a.image.display(),
                mib(image_bytes)
            );
            print!("{}", d.describe());
        }
        flash::Target::File(f) => println!(
            "fas-boards: will write {} into the file {}",
            a.image.display(),
            f.display()
        ),
    }
    if !a.yes {
        let name = a
            .device
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        print!("Everything on it will be lost. Type `{name}` to continue: ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if line.trim() != name {
            println!("fas-boards: not confirmed; nothing written");
            return Ok(false);
        }
    }
    let mut last = 0u64;
    let r = flash::write_and_verify(&a.image, &a.device, |stage, done, total| {
        let pct = done * 100 / total.max(1);
        if pct != last || done == total {
            last = pct;
            eprint!(
                "\r{stage}: {pct:3}% ({:.0} of {:.0} MiB)",
                mib(done),
                mib(total)
            );
            if done == total {
                eprintln!();
                last = 101;
            }
        }
    })?;
    println!(
        "fas-boards: wrote {:.0} MiB in {:.1} s, read back in {:.1} s, sha256 {} matches",
        mib(r.bytes),
        r.write.as_secs_f64(),
        r.verify.as_secs_f64(),
        r.sha256
    );
    Ok(true)
}
