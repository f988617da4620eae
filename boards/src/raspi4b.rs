//! The SD image on QEMU's Raspberry Pi 4B model (`-M raspi4b`, QEMU 9.0 or later).
//!
//! Bookworm's QEMU (7.2) has no `raspi4b`; when the host's lacks it, bookworm-backports'
//! QEMU is fetched with the private [`Apt`] into the fas cache and run against the host's
//! bookworm libraries, its modules from the cache (`QEMU_MODULE_DIR`).
//!
//! The image boots from the emulated SD card with its own kernel, initramfs and device
//! tree (QEMU's raspi machines have no boot firmware to read `config.txt`). The device tree
//! is patched for QEMU's BCM2711: what it lacks is switched off ([`DISABLED_NODES`]), and a
//! `simple-framebuffer` node is added on the memory QEMU's BCM2835 framebuffer shows
//! ([`QEMU_FRAMEBUFFER`]), so the image's `/dev/fb0` exists, as vc4's does on a Pi. The
//! relay line is read straight from the emulated GPIO block through QEMU's monitor (QMP)
//! while the guest runs: its function (output?) and its level.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::debian::{self, Apt};
use crate::hosttools::{self, FDTPUT, QEMU_AARCH64};
use crate::image::{self, DTB_FILE, INITRD_FILE, KERNEL_FILE, START_LINE};
use crate::image_boot::BootChain;
use crate::profile::Profile;
use crate::qmp::Qmp;

#[derive(Debug, thiserror::Error)]
pub enum Raspi4bError {
    #[error("{program}: `-machine help` lists no raspi4b ({detail}); QEMU 9.0 or later has it (bookworm-backports' is fetched when the host's lacks it)")]
    NoRaspi4b { program: PathBuf, detail: String },
    #[error("board {board}: relay.chip = {chip:?}; the raspi4b check reads the BCM2711's own GPIO block, so the relay must be on /dev/gpiochip0 (line < 58)")]
    RelayNotOnSoc { board: String, chip: String },
    #[error("{dtb}: no node {node} to patch ({detail}); the raspi4b check knows the device tree of Debian's bookworm kernel (bcm2711-rpi-4-b.dtb)")]
    MissingNode {
        dtb: PathBuf,
        node: String,
        detail: String,
    },
    #[error("{socket}: a Unix socket path must stay under 100 bytes ({len}); use a shorter --work directory")]
    SocketPath { socket: PathBuf, len: usize },
}

/// A `qemu-system-aarch64` with the `raspi4b` machine.
#[derive(Debug, Clone)]
pub struct Qemu {
    pub program: PathBuf,
    /// `QEMU_MODULE_DIR` for a QEMU unpacked into the cache (its modules, not the host's).
    pub module_dir: Option<PathBuf>,
    /// Its first `--version` line.
    pub version: String,
}

/// The Debian release whose backports hold a QEMU with `raspi4b`.
pub const BACKPORTS_OF: &str = "bookworm";
/// What is fetched from it: the emulator and the files it loads (firmware, keymaps).
pub const QEMU_PACKAGES: &[&str] = &["qemu-system-arm", "qemu-system-common"];

impl Qemu {
    /// The host's `qemu-system-aarch64` when it has `raspi4b`, else bookworm-backports'
    /// (downloaded and unpacked once into `<cache>/debian/qemu-<version>-<arch>`).
    pub fn find_or_fetch(cache: &Path) -> Result<Qemu> {
        if let Ok(program) = hosttools::find(QEMU_AARCH64) {
            let host = Qemu {
                program,
                module_dir: None,
                version: String::new(),
            };
            if let Ok(q) = host.checked() {
                return Ok(q);
            }
        }
        Qemu::fetch_backports(cache)?.checked()
    }

    fn fetch_backports(cache: &Path) -> Result<Qemu> {
        let arch = host_deb_arch()?;
        let pointer = cache.join("debian").join(format!("qemu-raspi4b-{arch}"));
        let version = match std::fs::read_to_string(&pointer) {
            Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
            _ => Apt::backports(cache, arch, BACKPORTS_OF)?.candidate(QEMU_PACKAGES[0])?,
        };
        let root = cache
            .join("debian")
            .join(format!("qemu-{}-{arch}", version.replace(':', "_")));
        if !root.join(".complete").exists() {
            let apt = Apt::backports(cache, arch, BACKPORTS_OF)?;
            let _ = std::fs::remove_dir_all(&root);
            for p in QEMU_PACKAGES {
                debian::extract(&apt.download_version(p, &version)?, &root)?;
            }
            std::fs::write(root.join(".complete"), b"")?;
        }
        fas_core::atomic::write_atomic(&pointer, version.as_bytes())?;
        let lib = root.join("usr/lib");
        let module_dir = std::fs::read_dir(&lib)
            .with_context(|| format!("reading {}", lib.display()))?
            .filter_map(|e| e.ok().map(|e| e.path().join("qemu")))
            .find(|d| d.is_dir());
        Ok(Qemu {
            program: root.join("usr/bin/qemu-system-aarch64"),
            module_dir,
            version,
        })
    }

    /// `self` when it runs here and lists `raspi4b`, with its version filled in.
    fn checked(mut self) -> Result<Qemu> {
        let out = self
            .command()
            .args(["-machine", "help"])
            .output()
            .with_context(|| format!("running {}", self.program.display()))?;
        let list = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !list.lines().any(|l| l.starts_with("raspi4b ")) {
            return Err(Raspi4bError::NoRaspi4b {
                program: self.program.clone(),
                detail: if out.status.success() {
                    "it runs".into()
                } else {
                    String::from_utf8_lossy(&out.stderr).trim().to_string()
                },
            }
            .into());
        }
        let v = self.command().arg("--version").output()?;
        self.version = String::from_utf8_lossy(&v.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        Ok(self)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        if let Some(d) = &self.module_dir {
            c.env("QEMU_MODULE_DIR", d);
        }
        c
    }
}

/// Debian's name for the host's architecture (the QEMU fetched must run here).
fn host_deb_arch() -> Result<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Ok("amd64"),
        "aarch64" => Ok("arm64"),
        other => anyhow::bail!(
            "no bookworm-backports QEMU is fetched for a {other} host; install QEMU 9.0 or later (it has raspi4b)"
        ),
    }
}

/// Device-tree nodes switched off for QEMU's BCM2711: the display pipeline (HVS, pixel
/// valves, HDMI and its interrupt controller and DDC buses — QEMU has none, and the
/// brcmstb i2c driver oopses on the missing DDC), the VideoCore GPU, the emmc2 SD
/// controller (QEMU's card sits on the Arasan SDHCI), PCIe (the VL805 USB) and Ethernet.
pub const DISABLED_NODES: &[&str] = &[
    "/soc/hvs@7e400000",
    "/soc/pixelvalve@7e206000",
    "/soc/pixelvalve@7e207000",
    "/soc/pixelvalve@7e20a000",
    "/soc/pixelvalve@7e216000",
    "/soc/pixelvalve@7ec12000",
    "/soc/interrupt-controller@7ef00100",
    "/soc/hdmi@7ef00700",
    "/soc/hdmi@7ef05700",
    "/soc/i2c@7ef04500",
    "/soc/i2c@7ef09500",
    "/gpu",
    "/emmc2bus/mmc@7e340000",
    "/scb/pcie@7d500000",
    "/scb/ethernet@7d580000",
];

/// The SD card's controller, and its property the Wi-Fi power sequence hangs on.
pub const SD_CONTROLLER: &str = "/soc/mmc@7e300000";
pub const SD_PWRSEQ: &str = "mmc-pwrseq";

/// A `simple-framebuffer` (RGB565) at a physical address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleFb {
    pub address: u64,
    pub width: u32,
    pub height: u32,
}

impl SimpleFb {
    pub fn stride(&self) -> u32 {
        self.width * 2
    }

    pub fn bytes(&self) -> u32 {
        self.stride() * self.height
    }

    pub fn node(&self) -> String {
        format!("/framebuffer@{:x}", self.address)
    }
}

/// QEMU's BCM2835 framebuffer as it starts: 640×480 RGB565, 1 MiB into the 64 MiB of
/// VideoCore memory QEMU keeps under 1 GiB (0x3c000000). QEMU's memory node for the kernel
/// ends where that memory begins, so the framebuffer is nobody's RAM; what the guest
/// writes there is what QEMU's display shows.
pub const QEMU_FRAMEBUFFER: SimpleFb = SimpleFb {
    address: 0x3c10_0000,
    width: 640,
    height: 480,
};

/// Patches the image's device tree (a copy) for QEMU's BCM2711: [`DISABLED_NODES`] get
/// `status = "disabled"`, the SD controller loses its power sequence, and `fb` is added.
pub fn patch_dtb(dtb: &Path, fb: SimpleFb) -> Result<()> {
    // fdtput [options] DTB NODE [PROPERTY [VALUE...]]
    let put = |opts: &[&str], rest: &[&str]| -> Result<(), hosttools::ToolError> {
        let mut a: Vec<&std::ffi::OsStr> = opts.iter().map(|s| s.as_ref()).collect();
        a.push(dtb.as_os_str());
        a.extend(rest.iter().map(|s| std::ffi::OsStr::new(*s)));
        hosttools::run(FDTPUT, &a).map(drop)
    };
    let missing = |node: &str, e: hosttools::ToolError| Raspi4bError::MissingNode {
        dtb: dtb.to_path_buf(),
        node: node.to_string(),
        detail: e.to_string(),
    };
    for node in DISABLED_NODES {
        put(&["-t", "s"], &[node, "status", "disabled"]).map_err(|e| missing(node, e))?;
    }
    put(&["-d"], &[SD_CONTROLLER, SD_PWRSEQ]).map_err(|e| missing(SD_CONTROLLER, e))?;
    let node = fb.node();
    let (w, h, s) = (
        fb.width.to_string(),
        fb.height.to_string(),
        fb.stride().to_string(),
    );
    let (hi, lo, len) = (
        format!("{:x}", fb.address >> 32),
        format!("{:x}", fb.address & 0xffff_ffff),
        format!("{:x}", fb.bytes()),
    );
    put(&["-c"], &[&node])?;
    put(&["-t", "s"], &[&node, "compatible", "simple-framebuffer"])?;
    // The root's #address-cells is 2 and #size-cells 1 on the BCM2711.
    put(&["-t", "x"], &[&node, "reg", &hi, &lo, &len])?;
    put(&["-t", "u"], &[&node, "width", &w])?;
    put(&["-t", "u"], &[&node, "height", &h])?;
    put(&["-t", "u"], &[&node, "stride", &s])?;
    put(&["-t", "s"], &[&node, "format", "r5g6b5"])?;
    put(&["-t", "s"], &[&node, "status", "okay"])?;
    Ok(())
}

/// The kernel command line for the check: the image's `cmdline.txt` with its serial
/// console moved from the mini UART (`ttyS1`: opening it hangs in QEMU's model) to the
/// PL011 (`ttyAMA0`, QEMU's first `-serial`), and `clk_ignore_unused`: without it the
/// kernel's sweep of unused clocks reads a clock gate QEMU's BCM2711 does not model, oopses
/// in `clk_gate_is_enabled` and takes init down (measured with QEMU 10.0.2).
pub fn cmdline(image_cmdline: &str) -> String {
    let mut args: Vec<String> = image_cmdline
        .split_whitespace()
        .filter(|a| !a.starts_with("console=ttyS") && !a.starts_with("console=serial"))
        .map(str::to_string)
        .collect();
    args.push("console=ttyAMA0,115200".into());
    args.push("clk_ignore_unused".into());
    args.join(" ")
}

/// The BCM2711's GPIO block at the ARM's (low peripheral) address.
pub const GPIO_BASE: u64 = 0xfe20_0000;
/// GPFSELn's function code for an output.
const GPIO_OUTPUT: u32 = 0b001;

/// The relay's BCM GPIO line and the level that keeps the door locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayPin {
    pub line: u32,
    pub locked_high: bool,
}

impl RelayPin {
    pub fn from_profile(p: &Profile) -> Result<RelayPin, Raspi4bError> {
        let chip = p.relay.chip.rsplit('/').next().unwrap_or("");
        if chip != "gpiochip0" || p.relay.line >= 58 {
            return Err(Raspi4bError::RelayNotOnSoc {
                board: p.name.clone(),
                chip: p.relay.chip.clone(),
            });
        }
        Ok(RelayPin {
            line: p.relay.line,
            locked_high: p.relay.polarity == "active_low",
        })
    }

    /// GPFSELn (3 bits a line, 10 lines a register).
    pub fn fsel_register(&self) -> u64 {
        GPIO_BASE + 4 * u64::from(self.line / 10)
    }

    /// GPLEVn (1 bit a line, 32 lines a register).
    pub fn level_register(&self) -> u64 {
        GPIO_BASE + 0x34 + 4 * u64::from(self.line / 32)
    }

    /// The line's state from the two registers' values.
    pub fn decode(&self, fsel: u32, lev: u32) -> RelayState {
        let function = (fsel >> (3 * (self.line % 10))) & 0b111;
        let high = lev >> (self.line % 32) & 1 == 1;
        if function != GPIO_OUTPUT {
            RelayState::NotDriven
        } else if high == self.locked_high {
            RelayState::Locked
        } else {
            RelayState::Unlocked
        }
    }
}

/// The relay line as the emulated GPIO block holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    /// Not an output (as at reset): the relay is de-energised, nobody holds the line.
    NotDriven,
    /// An output at the locked level.
    Locked,
    /// An output at the unlocking level: the door is open.
    Unlocked,
}

/// One reading of the relay line, `at_s` seconds after QEMU started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelaySample {
    pub at_s: f64,
    pub state: RelayState,
}

/// What a raspi4b boot produced.
#[derive(Debug, Clone)]
pub struct Raspi4bBoot {
    pub serial: String,
    pub elapsed: Duration,
    /// The guest ran past the limit and was killed.
    pub timed_out: bool,
    /// QEMU stopped by itself (its stderr, when it said anything).
    pub qemu_exit: Option<String>,
    /// Seconds from QEMU's start until the image's init first started fas-edge.
    pub first_start_s: Option<f64>,
    /// The guest's own clock (the kernel's last timestamp) when fas-edge was first started.
    pub first_start_guest_s: Option<f64>,
    /// Seconds from QEMU's start until fas-edge said `fas-edge: ready`.
    pub ready_s: Option<f64>,
    /// The relay line, read about every 200 ms while the guest ran.
    pub relay: Vec<RelaySample>,
}

impl Raspi4bBoot {
    /// The kernel registered `/dev/fb0` on the simple-framebuffer.
    pub fn framebuffer_up(&self) -> bool {
        self.serial
            .lines()
            .any(|l| l.contains("simple-framebuffer") && l.contains("fb0: simplefb registered"))
    }
}

/// The kernel's last `[ seconds]` timestamp in `serial`.
fn last_kernel_time(serial: &str) -> Option<f64> {
    serial.lines().rev().find_map(|l| {
        let rest = l.trim_end_matches('\r').strip_prefix('[')?;
        rest.split(']').next()?.trim().parse().ok()
    })
}

/// The next power of two at or above `n` (QEMU's SD card model wants one).
pub fn sd_card_bytes(n: u64) -> u64 {
    n.next_power_of_two()
}

/// Boots `image` on `-M raspi4b` until `done(serial log)` has held for `hold` (the relay
/// keeps being read meanwhile), the guest stops, or `limit` passes; the guest is killed
/// then. The guest writes to a copy of the image in `work`: the image is unchanged.
pub fn boot(
    qemu: &Qemu,
    image: &Path,
    work: &Path,
    relay: RelayPin,
    limit: Duration,
    hold: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<Raspi4bBoot> {
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let parts = image::partitions(image)?;
    let boot_part = parts
        .first()
        .with_context(|| format!("{}: no partitions", image.display()))?;
    let (kernel, initrd, dtb, cmdline_txt) = (
        work.join(KERNEL_FILE),
        work.join(INITRD_FILE),
        work.join(DTB_FILE),
        work.join("cmdline.txt"),
    );
    for (name, to) in [
        (KERNEL_FILE, &kernel),
        (INITRD_FILE, &initrd),
        (DTB_FILE, &dtb),
        ("cmdline.txt", &cmdline_txt),
    ] {
        image::copy_out_of_boot(image, boot_part, name, to)?;
    }
    patch_dtb(&dtb, QEMU_FRAMEBUFFER)?;
    let append = cmdline(&std::fs::read_to_string(&cmdline_txt)?);
    let sd = work.join("sd.img");
    std::fs::copy(image, &sd).with_context(|| format!("copying {}", image.display()))?;
    {
        let f = std::fs::OpenOptions::new().write(true).open(&sd)?;
        f.set_len(sd_card_bytes(f.metadata()?.len()))?;
    }
    let socket = work.join("qmp.sock");
    let len = socket.as_os_str().len();
    if len >= 100 {
        return Err(Raspi4bError::SocketPath { socket, len }.into());
    }
    let _ = std::fs::remove_file(&socket);
    let serial_log = work.join("serial.log");
    let _ = std::fs::remove_file(&serial_log);
    let qemu_log = work.join("qemu.log");
    let t0 = Instant::now();
    let mut child = qemu
        .command()
        .args(["-M", "raspi4b", "-m", "2G"])
        .args(["-display", "none", "-audio", "none", "-no-reboot"])
        .args(["-monitor", "none"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-dtb")
        .arg(&dtb)
        .args(["-append", &append])
        .arg("-drive")
        .arg(format!("if=sd,format=raw,file={}", sd.display()))
        // serial0 is the PL011 (the console above), serial1 the mini UART.
        .arg("-serial")
        .arg(format!("file:{}", serial_log.display()))
        .args(["-serial", "null"])
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&qemu_log)?)
        .spawn()
        .with_context(|| format!("starting {}", qemu.program.display()))?;
    let result = watch(
        &mut child,
        &socket,
        &serial_log,
        relay,
        t0,
        limit,
        hold,
        done,
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&sd);
    let mut b = result?;
    if b.qemu_exit.is_some() {
        b.qemu_exit = Some(std::fs::read_to_string(&qemu_log).unwrap_or_default());
    }
    b.elapsed = t0.elapsed();
    Ok(b)
}

#[allow(clippy::too_many_arguments)]
fn watch(
    child: &mut Child,
    socket: &Path,
    serial_log: &Path,
    relay: RelayPin,
    t0: Instant,
    limit: Duration,
    hold: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<Raspi4bBoot> {
    let read = || {
        std::fs::read(serial_log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let mut b = Raspi4bBoot {
        serial: String::new(),
        elapsed: Duration::ZERO,
        timed_out: false,
        qemu_exit: None,
        first_start_s: None,
        first_start_guest_s: None,
        ready_s: None,
        relay: Vec::new(),
    };
    let mut qmp = Qmp::connect(socket, child, Duration::from_secs(30))?;
    let mut done_at: Option<Instant> = None;
    loop {
        let serial = read();
        let at_s = t0.elapsed().as_secs_f64();
        if b.first_start_s.is_none() {
            if let Some(i) = serial.find(START_LINE) {
                b.first_start_s = Some(at_s);
                b.first_start_guest_s = last_kernel_time(&serial[..i]);
            }
        }
        if b.ready_s.is_none() && serial.contains("\nfas-edge: ready") {
            b.ready_s = Some(at_s);
        }
        if child.try_wait()?.is_some() {
            b.qemu_exit = Some(String::new());
            b.serial = serial;
            return Ok(b);
        }
        let read_relay = |q: &mut Qmp| -> Result<RelayState> {
            let fsel = q.read_u32(relay.fsel_register())?;
            Ok(relay.decode(fsel, q.read_u32(relay.level_register())?))
        };
        match read_relay(&mut qmp) {
            Ok(state) => b.relay.push(RelaySample { at_s, state }),
            // QEMU stopped between the two looks: the next turn reports it.
            Err(_) if child.try_wait()?.is_some() => continue,
            Err(e) => return Err(e),
        }
        if done_at.is_none() && done(&serial) {
            done_at = Some(Instant::now());
        }
        if done_at.is_some_and(|d| d.elapsed() >= hold) {
            b.serial = serial;
            return Ok(b);
        }
        if t0.elapsed() > limit {
            b.timed_out = true;
            b.serial = serial;
            return Ok(b);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What keeps a raspi4b boot from passing: the image's chain ([`BootChain::boot_failures`]:
/// root, init, fas-edge started, no Grant), then fas-edge up and waiting for the absent
/// camera with the door locked: ready, no stop, `/dev/fb0` registered, the relay line never
/// read unlocked and read held locked (an output at the locked level) once ready.
pub fn failures(boot: &Raspi4bBoot, chain: &BootChain, limit: Duration) -> Vec<String> {
    let mut f = chain.boot_failures();
    if boot.timed_out {
        f.insert(
            0,
            format!("the guest ran past {} s and was killed", limit.as_secs()),
        );
    }
    if let Some(e) = &boot.qemu_exit {
        f.insert(0, format!("QEMU stopped by itself: {}", e.trim()));
    }
    if !boot.framebuffer_up() {
        f.push("the kernel registered no /dev/fb0 on the simple-framebuffer".into());
    }
    if !chain.ready {
        f.push("fas-edge never reported ready".into());
    }
    if !chain.camera_waiting {
        f.push("fas-edge did not say it waits for the missing camera with the door locked".into());
    }
    if !chain.exits.is_empty() || !chain.edge_errors.is_empty() {
        f.push(format!(
            "fas-edge stopped (exits {:?}, errors {:?}); with no camera it must wait, locked",
            chain.exits, chain.edge_errors
        ));
    }
    if let Some(s) = boot.relay.iter().find(|s| s.state == RelayState::Unlocked) {
        f.push(format!(
            "the relay line was driven to its unlocking level {:.1} s after QEMU started",
            s.at_s
        ));
    }
    match (boot.ready_s, boot.relay.last()) {
        (_, None) => f.push("the relay line was never read".into()),
        (Some(ready), Some(last)) if last.at_s >= ready && last.state != RelayState::Locked => f
            .push(format!(
                "fas-edge is ready but the relay line is {:?}, not held locked",
                last.state
            )),
        (Some(ready), Some(last)) if last.at_s < ready => {
            f.push("the relay line was not read after fas-edge reported ready".into())
        }
        _ => {}
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_moves_to_the_pl011() {
        assert_eq!(
            cmdline("console=tty1 console=ttyS1,115200 root=LABEL=fas-root rootwait panic=10\n"),
            "console=tty1 root=LABEL=fas-root rootwait panic=10 console=ttyAMA0,115200 clk_ignore_unused"
        );
        assert_eq!(
            cmdline(&image::cmdline_txt()),
            format!(
                "console=tty1 root=LABEL={} rootwait panic=10 console=ttyAMA0,115200 clk_ignore_unused",
                image::ROOT_LABEL
            )
        );
    }

    #[test]
    fn relay_registers_and_states_follow_the_bcm2711_gpio_layout() {
        let rpi4 = RelayPin::from_profile(&Profile::load("rpi4").unwrap()).unwrap();
        assert_eq!(
            rpi4,
            RelayPin {
                line: 17,
                locked_high: false
            }
        );
        assert_eq!(rpi4.fsel_register(), 0xfe20_0004);
        assert_eq!(rpi4.level_register(), 0xfe20_0034);
        // Read from QEMU with fas-edge ready: GPIO 14/15 on ALT5 (the mini UART), 17 an
        // output, all levels low.
        assert_eq!(rpi4.decode(0x0021_2000, 0), RelayState::Locked);
        assert_eq!(rpi4.decode(0x0021_2000, 1 << 17), RelayState::Unlocked);
        assert_eq!(rpi4.decode(0x0001_2000, 1 << 17), RelayState::NotDriven);
        assert_eq!(rpi4.decode(0, 0), RelayState::NotDriven);
        // Another line's bits say nothing about line 17.
        assert_eq!(rpi4.decode(0x0021_2000, !(1 << 17)), RelayState::Locked);
        let low = RelayPin {
            line: 40,
            locked_high: true,
        };
        assert_eq!(
            (low.fsel_register(), low.level_register()),
            (0xfe20_0010, 0xfe20_0038)
        );
        assert_eq!(low.decode(1, 1 << 8), RelayState::Locked);
        assert_eq!(low.decode(1, 0), RelayState::Unlocked);

        let mut jetson = Profile::load("rpi4").unwrap();
        jetson.relay.chip = "/dev/gpiochip1".into();
        assert!(RelayPin::from_profile(&jetson)
            .unwrap_err()
            .to_string()
            .contains("/dev/gpiochip1"));
    }

    #[test]
    fn kernel_times_parse() {
        let log = "[    3.881618] Not activating\nfas-init: rpi4 root file system up\n";
        assert_eq!(last_kernel_time(log), Some(3.881618));
        assert_eq!(last_kernel_time("fas-init: x\n"), None);
        assert_eq!(sd_card_bytes(234_881_024), 256 << 20);
        assert_eq!(sd_card_bytes(256 << 20), 256 << 20);
        let fb = QEMU_FRAMEBUFFER;
        assert_eq!((fb.stride(), fb.bytes()), (1280, 0x96000));
        assert_eq!(fb.node(), "/framebuffer@3c100000");
    }

    fn boot_with(serial: &str, relay: &[(f64, RelayState)], ready_s: Option<f64>) -> Raspi4bBoot {
        Raspi4bBoot {
            serial: serial.into(),
            elapsed: Duration::from_secs(20),
            timed_out: false,
            qemu_exit: None,
            first_start_s: Some(5.0),
            first_start_guest_s: Some(3.9),
            ready_s,
            relay: relay
                .iter()
                .map(|&(at_s, state)| RelaySample { at_s, state })
                .collect(),
        }
    }

    #[test]
    fn passes_only_ready_waiting_locked_with_a_framebuffer() {
        use RelayState::*;
        let log = "[    1.59] simple-framebuffer 3c100000.framebuffer: fb0: simplefb registered!\n\
            fas-initramfs: root /dev/mmcblk0p2 (LABEL=fas-root); switching to it\n\
            fas-init: rpi4 root file system up (6.1.0-57-arm64)\n\
            fas-init: starting fas-edge (run 1)\n\
            fas-edge: model image-test (0123), threshold 0.5 from bundle, signer 00\n\
            fas-edge: camera /dev/video0 is not present; the door stays locked until it appears\n\
            fas-edge: ready — camera /dev/video0 (lost, reconnecting)\n";
        let chain = BootChain::parse(log);
        let limit = Duration::from_secs(60);
        let good = boot_with(
            log,
            &[(1.0, NotDriven), (9.0, Locked), (11.0, Locked)],
            Some(9.0),
        );
        assert!(
            failures(&good, &chain, limit).is_empty(),
            "{:?}",
            failures(&good, &chain, limit)
        );

        let opened = boot_with(
            log,
            &[(1.0, NotDriven), (8.0, Unlocked), (11.0, Locked)],
            Some(9.0),
        );
        assert!(failures(&opened, &chain, limit)[0].contains("unlocking level 8.0 s"));
        let released = boot_with(log, &[(9.0, NotDriven)], Some(9.0));
        assert!(failures(&released, &chain, limit)[0].contains("NotDriven"));
        let early = boot_with(log, &[(1.0, NotDriven)], Some(9.0));
        assert!(failures(&early, &chain, limit)[0].contains("not read after"));
        let unread = boot_with(log, &[], Some(9.0));
        assert!(failures(&unread, &chain, limit)[0].contains("never read"));

        let no_fb = log.replace("fb0: simplefb registered!", "probe failed");
        let f = failures(
            &boot_with(&no_fb, &[(9.0, Locked)], Some(9.0)),
            &chain,
            limit,
        );
        assert!(f[0].contains("/dev/fb0"), "{f:?}");

        let stopped = format!("{log}fas-edge: error: /dev/fb0: cannot open\nfas-init: fas-edge exited with status 1; restarting in 2 s\n");
        let f = failures(&good, &BootChain::parse(&stopped), limit);
        assert!(f.iter().any(|e| e.contains("fas-edge stopped")), "{f:?}");
        let not_ready = log.replace("fas-edge: ready", "fas-edge: almost");
        let f = failures(&good, &BootChain::parse(&not_ready), limit);
        assert!(
            f.iter().any(|e| e.contains("never reported ready")),
            "{f:?}"
        );
        let granted = format!("{log}decision: grant (live)\n");
        let f = failures(&good, &BootChain::parse(&granted), limit);
        assert!(f.iter().any(|e| e.contains("door opened")), "{f:?}");
        let mut hung = good.clone();
        hung.timed_out = true;
        assert!(failures(&hung, &chain, limit)[0].contains("past 60 s"));
    }

    #[test]
    fn the_device_tree_gets_the_framebuffer_and_loses_what_qemu_lacks() {
        let dtc = hosttools::Tool {
            program: "dtc",
            package: "device-tree-compiler",
        };
        if let Err(e) = hosttools::require(&[dtc, FDTPUT]) {
            eprintln!("SKIPPED the device-tree patch test: {e}");
            return;
        }
        // A tree with every node the patch touches, as Debian's bcm2711-rpi-4-b.dtb has them.
        let mut parents: std::collections::BTreeMap<&str, String> = Default::default();
        for n in DISABLED_NODES {
            let (parent, name) = n[1..].rsplit_once('/').unwrap_or(("", &n[1..]));
            *parents.entry(parent).or_default() += &format!("{name} {{ status = \"okay\"; }};\n");
        }
        *parents.entry("soc").or_default() +=
            "mmc@7e300000 { mmc-pwrseq = <1>; status = \"okay\"; };\n";
        let mut dts = "/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <1>;\n".to_string();
        for (parent, children) in &parents {
            if parent.is_empty() {
                dts += children;
            } else {
                dts += &format!("{parent} {{ {children} }};\n");
            }
        }
        dts += "};\n";
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("t.dts");
        let dtb = dir.path().join("t.dtb");
        let compile = |src: &Path, out: &Path| {
            hosttools::run(
                dtc,
                &[
                    "-I".as_ref(),
                    "dts".as_ref(),
                    "-O".as_ref(),
                    "dtb".as_ref(),
                    "-o".as_ref(),
                    out.as_os_str(),
                    src.as_os_str(),
                ],
            )
            .unwrap();
        };
        std::fs::write(&src, dts).unwrap();
        compile(&src, &dtb);
        patch_dtb(&dtb, QEMU_FRAMEBUFFER).unwrap();
        let get = |node: &str, prop: &str, kind: &str| {
            hosttools::run(
                hosttools::Tool {
                    program: "fdtget",
                    package: "device-tree-compiler",
                },
                &[
                    "-t".as_ref(),
                    kind.as_ref(),
                    dtb.as_os_str(),
                    node.as_ref(),
                    prop.as_ref(),
                ],
            )
        };
        for n in DISABLED_NODES {
            assert_eq!(get(n, "status", "s").unwrap().trim(), "disabled", "{n}");
        }
        assert!(get(SD_CONTROLLER, SD_PWRSEQ, "x").is_err());
        assert_eq!(get(SD_CONTROLLER, "status", "s").unwrap().trim(), "okay");
        let fb = QEMU_FRAMEBUFFER.node();
        assert_eq!(
            get(&fb, "compatible", "s").unwrap().trim(),
            "simple-framebuffer"
        );
        assert_eq!(get(&fb, "reg", "x").unwrap().trim(), "0 3c100000 96000");
        assert_eq!(get(&fb, "width", "u").unwrap().trim(), "640");
        assert_eq!(get(&fb, "stride", "u").unwrap().trim(), "1280");
        assert_eq!(get(&fb, "format", "s").unwrap().trim(), "r5g6b5");

        // A tree without the nodes is refused by name.
        let bare = dir.path().join("bare.dtb");
        std::fs::write(&src, "/dts-v1/;\n/ { };\n").unwrap();
        compile(&src, &bare);
        let e = patch_dtb(&bare, QEMU_FRAMEBUFFER).unwrap_err().to_string();
        assert!(e.contains("no node /soc/hvs@7e400000"), "{e}");
    }
}
