//! The aarch64 guest: Debian's arm64 kernel and modules, an initramfs holding busybox,
//! fas-edge, fas-testbed, the bundle, the detector and the rendered plan, and QEMU's
//! `virt` machine with a PL061 GPIO controller and a virtio-gpu framebuffer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cpio::{self, Entry};
use crate::debian::{self, Apt};

/// Where the relay is: PL061 line 0 of the `virt` machine (line 3 is its power button).
pub const RELAY_LINE: u32 = 0;

/// A Debian kernel unpacked for the guest.
pub struct Kernel {
    pub version: String,
    /// The arm64 `Image` (Debian's `vmlinuz` on arm64 is uncompressed).
    pub image: PathBuf,
    /// Root of the unpacked package (`lib/modules/<version>/...`), with `modules.dep`.
    pub root: PathBuf,
}

/// Downloads (once, cached) and unpacks Debian's current arm64 kernel and busybox.
pub fn fetch(cache: &Path) -> Result<(Kernel, PathBuf)> {
    let apt = Apt::new(cache, "arm64", "bookworm")?;
    let kpkg = match std::fs::read_to_string(cache.join("debian/kernel-arm64")) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            apt.update()?;
            let k = apt.resolve_meta("linux-image-arm64")?;
            fas_core::atomic::write_atomic(&cache.join("debian/kernel-arm64"), k.as_bytes())?;
            k
        }
    };
    let version = kpkg
        .strip_prefix("linux-image-")
        .with_context(|| format!("unexpected kernel package name {kpkg}"))?
        .to_string();
    let root = cache.join("debian").join(format!("root-{version}"));
    let image = root.join("boot").join(format!("vmlinuz-{version}"));
    if !root.join(".complete").exists() {
        let deb = apt.download(&kpkg)?;
        let _ = std::fs::remove_dir_all(&root);
        debian::extract(&deb, &root)?;
        let st = Command::new("depmod")
            .arg("-b")
            .arg(&root)
            .arg(&version)
            .status()
            .context("could not run depmod (Debian's `kmod`)")?;
        if !st.success() {
            bail!("depmod for {version} failed");
        }
        std::fs::write(root.join(".complete"), b"")?;
    }
    let bb_root = cache.join("debian").join("busybox-arm64");
    let busybox = bb_root.join("bin/busybox");
    if !busybox.exists() {
        let deb = apt.download("busybox-static")?;
        debian::extract(&deb, &bb_root)?;
    }
    if !image.exists() {
        bail!("{} missing after unpacking {kpkg}", image.display());
    }
    Ok((
        Kernel {
            version,
            image,
            root,
        },
        busybox,
    ))
}

/// The `insmod` order for `module` and its dependencies, with the `.ko` files
/// (`modprobe --show-depends` against the unpacked tree; loads nothing on the host).
pub fn module_order(k: &Kernel, module: &str) -> Result<Vec<PathBuf>> {
    let out = Command::new("modprobe")
        .arg("-d")
        .arg(&k.root)
        .args(["-S", &k.version, "--show-depends", module])
        .output()
        .context("could not run modprobe (Debian's `kmod`)")?;
    if !out.status.success() {
        bail!(
            "modprobe --show-depends {module}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut kos = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(rest) = line.strip_prefix("insmod ") {
            let path = rest.split_whitespace().next().unwrap_or("");
            kos.push(PathBuf::from(path));
        }
    }
    if kos.is_empty() {
        bail!(
            "{module} is built into {} (nothing to load) or unknown",
            k.version
        );
    }
    Ok(kos)
}

/// Two vivid instances. The first has one S-Video capture input (`/dev/video0`) and one
/// S-Video output (`/dev/video1`), so its output loops into its capture with no input
/// switching, and no crop/compose/scale: the door's camera, showing the plan. The second
/// is a webcam-style capture (`/dev/video2`: discrete sizes and frame rates, vivid's test
/// pattern), which is what desktop capture through nokhwa needs (nokhwa only opens
/// cameras that enumerate their frame sizes and intervals): the trigger phase's camera.
pub const VIVID_PARAMS: &str = "n_devs=2 node_types=0x101,0x1 num_inputs=1,1 input_types=0x2,0x0 num_outputs=1,0 output_types=0x0,0x0 ccs_cap_mode=0,0 ccs_out_mode=0,0 vid_cap_nr=0,2 vid_out_nr=1,-1";

/// The trigger phase's camera: the webcam-style vivid instance through fas-edge's nokhwa
/// backend, so the real-device test runs both capture backends against a real driver.
pub const TRIGGER_CAMERA: &str = "nokhwa:2";

/// Everything that goes into the guest.
pub struct GuestFiles<'a> {
    pub edge: &'a Path,
    pub testbed: &'a Path,
    pub bundle: &'a Path,
    /// Directory of trusted `.pub` keys.
    pub keys: &'a Path,
    pub detector: &'a Path,
    pub plan_dir: &'a Path,
}

/// fas-edge's configuration in the guest.
pub fn edge_config(width: u32, height: u32) -> String {
    format!(
        r#"# fas-edge in the QEMU real-device test.
{common}
[camera]
device = "/dev/video0"
width = {width}
height = {height}
fps = 30
formats = ["YUYV"]
reconnect_initial_ms = 200
reconnect_max_ms = 1000
# vivid is a virtual driver (a door refuses one unless told): this is the test rig.
expect_driver = "vivid"

[actuator]
kind = "gpio"
chip = "/dev/gpiochip0"
line = {RELAY_LINE}
polarity = "active_high"
pulse_ms = 1200

# The liveness phase judges presentations, not people: any live face (no enrolment here).
[access]
mode = "presence"
allow_any_live_face = true

[display]
kind = "framebuffer"
device = "/dev/fb0"

[audit]
path = "/var/lib/fas/audit.jsonl"
"#,
        common = COMMON_CONFIG
    )
}

/// The PL061 line QEMU's `virt` pulses for its power button (`system_powerdown`).
pub const TRIGGER_LINE: u32 = 3;

/// fas-edge's configuration for the trigger phase: sessions start only on a rising edge of
/// PL061 line 3, which the host pulses through QEMU's power button. The camera is
/// [`TRIGGER_CAMERA`] (nokhwa on vivid's webcam instance, its test pattern: nobody there).
pub fn trigger_config() -> String {
    format!(
        r#"# fas-edge in the QEMU real-device test: the GPIO trigger phase, capturing through
# the nokhwa backend from vivid's webcam-style instance (a test pattern, no face).
{common}
[camera]
device = "{TRIGGER_CAMERA}"
width = 640
height = 480
fps = 5
formats = ["YUYV"]

[trigger]
kind = "gpio"
chip = "/dev/gpiochip0"
line = {TRIGGER_LINE}
edge = "rising"

[actuator]
kind = "none"

[display]
kind = "none"

[audit]
path = "/var/lib/fas/trigger-audit.jsonl"
"#,
        common = COMMON_CONFIG
    )
}

/// Model, detector and policy: the same in both phases.
const COMMON_CONFIG: &str = r#"[model]
bundle = "/etc/fas/model.fasb"
trusted_keys = "/etc/fas/keys"
calibration = "/var/lib/fas/calibration.json"
allow_demo = true

# The face fills a good part of the frame: detecting at 320 px halves the detector's
# cost, which dominates each frame under TCG emulation (~1 s a frame).
[detector]
model = "/usr/share/fas/retinaface_mnet025.onnx"
max_side = 320

# Under TCG emulation the door sees one good frame every 1 s (fast host) to 10 s (slow
# host): two frames within 9 seconds make a decision. The window stays shorter than the
# 10 s of empty scene between presentations (`fas-boards testbed --gap`), as a door's
# 3 s window is shorter than the time between two people: with 30 s, a session could
# start on one presentation's last frame and end on the next one's first (a live face
# and a print averaged into a grant — what the verdict rightly fails).
[policy]
frames = 2
window_ms = 9000
cooldown_ms = 2500
# Each presentation is judged on its own sessions: a lockout after the attacks in a row
# would refuse the next presentation unseen (the lockout has its own host tests).
lockout_after = 0
"#;

fn init_script(insmods: &[String]) -> String {
    let mut s = String::from(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmp /tmp
mkdir -p /var/lib/fas
fail() { fas-testbed error "$1"; poweroff -f; }
"#,
    );
    for m in insmods {
        s += &format!("insmod {m} || fail 'insmod {m}'\n");
    }
    s += r#"for i in $(seq 300); do
  [ -e /dev/video0 ] && [ -e /dev/video1 ] && [ -e /dev/video2 ] && [ -e /dev/fb0 ] && [ -e /dev/gpiochip0 ] && break
  sleep 0.1
done
[ -e /dev/fb0 ] || dmesg | grep -iE 'virtio|drm|fb|pci' | tail -20
fas-testbed booted || fail booted
fas-testbed setup || fail 'vivid loop setup'
fas-testbed watch-gpio --line RELAY &
WATCH=$!
touch /tmp/edge.log
fas-edge --config /etc/fas/edge.toml >/tmp/edge.log 2>&1 &
EDGE=$!
tail -f /tmp/edge.log &
TAIL=$!
for i in $(seq 600); do
  grep -q 'fas-edge: ready' /tmp/edge.log && break
  kill -0 $EDGE 2>/dev/null || break
  sleep 0.2
done
grep -q 'fas-edge: ready' /tmp/edge.log || fail 'fas-edge did not become ready'
fas-testbed play /plan /var/lib/fas/audit.jsonl
if kill -0 $EDGE 2>/dev/null; then RUNNING=1; kill $EDGE; else RUNNING=0; fi
wait $EDGE
STATUS=$?
fas-testbed edge-exit $RUNNING $STATUS
sleep 0.3
kill $WATCH $TAIL
fas-testbed fb-check /dev/fb0
fas-edge audit verify /var/lib/fas/audit.jsonl
while read -r line; do echo "@audit $line"; done < /var/lib/fas/audit.jsonl
# Trigger phase: sessions start only on a GPIO edge; the host presses QEMU's power
# button (PL061 line 3) once it reads trigger_ready here.
fas-edge --config /etc/fas/trigger.toml --json >/tmp/trigger.log 2>/tmp/trigger.err &
EDGE=$!
for i in $(seq 600); do
  grep -q '"event":"ready"' /tmp/trigger.log && break
  kill -0 $EDGE 2>/dev/null || break
  sleep 0.2
done
sleep 2
fas-testbed trigger-ready /tmp/trigger.log
for i in $(seq 300); do
  grep -q '"event":"decision"' /tmp/trigger.log && break
  kill -0 $EDGE 2>/dev/null || break
  sleep 0.2
done
kill $EDGE 2>/dev/null
wait $EDGE
sed 's/^/trigger: /' /tmp/trigger.err | tail -5
fas-testbed trigger-report /tmp/trigger.log
fas-testbed done
poweroff -f
"#;
    s.replace("RELAY", &RELAY_LINE.to_string())
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

/// Builds the initramfs (uncompressed newc cpio: the kernel unpacks it directly, and
/// decompressing ~100 MB under TCG would cost seconds).
pub fn initramfs(k: &Kernel, busybox: &Path, files: &GuestFiles<'_>, out: &Path) -> Result<()> {
    let plan = super::plan::load(files.plan_dir)?;
    let mut insmods = Vec::new();
    let mut entries = vec![];
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "etc",
        "etc/fas",
        "etc/fas/keys",
        "usr",
        "usr/share",
        "usr/share/fas",
        "var",
        "var/lib",
        "lib",
        "lib/modules",
        "plan",
    ] {
        entries.push(Entry::Dir {
            path: d.into(),
            mode: 0o755,
        });
    }
    let exe = |path: &str, src: &Path| -> Result<Entry> {
        Ok(Entry::File {
            path: path.into(),
            mode: 0o755,
            data: read(src)?,
        })
    };
    entries.push(exe("bin/busybox", busybox)?);
    entries.push(exe("bin/fas-edge", files.edge)?);
    entries.push(exe("bin/fas-testbed", files.testbed)?);
    let mut seen = std::collections::BTreeSet::new();
    for module in ["vivid", "virtio_pci", "virtio-gpu"] {
        for ko in module_order(k, module)? {
            let name = ko
                .file_name()
                .and_then(|n| n.to_str())
                .context("module name")?
                .to_string();
            if !seen.insert(name.clone()) {
                continue;
            }
            entries.push(Entry::File {
                path: format!("lib/modules/{name}"),
                mode: 0o644,
                data: read(&ko)?,
            });
            let params = if name.starts_with("vivid.") {
                format!(" {VIVID_PARAMS}")
            } else {
                String::new()
            };
            insmods.push(format!("/lib/modules/{name}{params}"));
        }
    }
    entries.push(Entry::File {
        path: "init".into(),
        mode: 0o755,
        data: init_script(&insmods).into_bytes(),
    });
    entries.push(Entry::File {
        path: "etc/fas/edge.toml".into(),
        mode: 0o644,
        data: edge_config(plan.width, plan.height).into_bytes(),
    });
    entries.push(Entry::File {
        path: "etc/fas/trigger.toml".into(),
        mode: 0o644,
        data: trigger_config().into_bytes(),
    });
    entries.push(Entry::File {
        path: "etc/fas/model.fasb".into(),
        mode: 0o644,
        data: read(files.bundle)?,
    });
    for e in std::fs::read_dir(files.keys)
        .with_context(|| format!("reading {}", files.keys.display()))?
    {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "pub") {
            let name = p.file_name().and_then(|n| n.to_str()).context("key name")?;
            entries.push(Entry::File {
                path: format!("etc/fas/keys/{name}"),
                mode: 0o644,
                data: read(&p)?,
            });
        }
    }
    entries.push(Entry::File {
        path: "usr/share/fas/retinaface_mnet025.onnx".into(),
        mode: 0o644,
        data: read(files.detector)?,
    });
    entries.push(Entry::File {
        path: "plan/plan.json".into(),
        mode: 0o644,
        data: read(&files.plan_dir.join("plan.json"))?,
    });
    for s in &plan.sessions {
        entries.push(Entry::File {
            path: format!("plan/{}", s.file),
            mode: 0o644,
            data: read(&files.plan_dir.join(&s.file))?,
        });
    }
    let mut buf = Vec::new();
    cpio::write(&mut buf, &entries)?;
    fas_core::atomic::write_atomic(out, &buf)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// What a boot produced.
pub struct BootResult {
    pub serial: String,
    pub elapsed: Duration,
    pub timed_out: bool,
    /// The host pressed the power button (GPIO line 3) for the trigger phase.
    pub pressed: bool,
}

/// Boots the guest and waits for it to power off, at most `limit`. When the guest reports
/// `trigger_ready`, the host presses QEMU's power button once through the monitor socket
/// `qmp` (PL061 line 3 goes high for 100 ms).
pub fn boot(
    k: &Kernel,
    initrd: &Path,
    serial_log: &Path,
    qmp: &Path,
    limit: Duration,
    smp: u32,
) -> Result<BootResult> {
    let _ = std::fs::remove_file(serial_log);
    let _ = std::fs::remove_file(qmp);
    let t0 = Instant::now();
    let mut child = Command::new("qemu-system-aarch64")
        .args([
            "-M",
            "virt",
            "-cpu",
            "cortex-a72",
            "-accel",
            "tcg",
            "-m",
            "1536",
        ])
        .args(["-smp", &smp.to_string()])
        .args([
            "-display",
            "none",
            "-nic",
            "none",
            "-device",
            "virtio-gpu-pci",
            "-no-reboot",
            "-monitor",
            "none",
        ])
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp.display()))
        .arg("-kernel")
        .arg(&k.image)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyAMA0 quiet panic=-1 rdinit=/init"])
        .arg("-serial")
        .arg(format!("file:{}", serial_log.display()))
        .stdin(Stdio::null())
        .spawn()
        .context("could not start qemu-system-aarch64 (Debian's `qemu-system-arm`)")?;
    let mut timed_out = false;
    let mut pressed = false;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if t0.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        if !pressed
            && std::fs::read(serial_log)
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains("\"event\":\"trigger_ready\""))
        {
            let mut monitor = crate::qmp::Qmp::connect(qmp, &mut child, Duration::from_secs(10))?;
            monitor.power_button()?;
            pressed = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let serial = std::fs::read(serial_log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Ok(BootResult {
        serial,
        elapsed: t0.elapsed(),
        timed_out,
        pressed,
    })
}
