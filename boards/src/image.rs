//! A flashable Raspberry Pi 4 SD card image, built without root and without loop mounts:
//! a FAT32 boot partition (`mkfs.vfat -C` + `mcopy`) with Debian's Pi firmware
//! (`raspi-firmware`), Debian's arm64 kernel, the bcm2711 device tree, an initramfs that
//! loads the root device's modules and switches to the root file system, `config.txt` and
//! `cmdline.txt`; an ext4 root (`mkfs.ext4 -d`) with busybox, an init that starts fas-edge
//! with the board's config and restarts it, the static aarch64 musl fas-edge, the bundle,
//! keys, detector and face-embedding network; an MBR (`sfdisk` on the image file); the partitions placed with
//! plain file writes.

use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cpio::{self, Entry};
use crate::debian::{self, Apt};
use crate::hosttools::{self, MCOPY, MKFS_EXT4, MKFS_VFAT, SFDISK};
use crate::mbr::{self, Partition};
use crate::profile::{ImageKind, Profile};
use crate::stage;
use crate::testbed::guest::{self, Kernel};

/// The root file system's label; the initramfs finds the root by it (`root=LABEL=…`), so
/// the same image boots from `mmcblk0p2` on the Pi and `vda2` in the QEMU check.
pub const ROOT_LABEL: &str = "fas-root";
/// File names on the boot partition.
pub const KERNEL_FILE: &str = "vmlinuz";
pub const INITRD_FILE: &str = "initrd.img";
pub const DTB_FILE: &str = "bcm2711-rpi-4-b.dtb";
/// The line the image's init prints each time it starts fas-edge.
pub const START_LINE: &str = "fas-init: starting fas-edge (run ";
/// The line the image's init prints when fas-edge has stopped.
pub const EXIT_LINE: &str = "fas-init: fas-edge exited with status ";
/// The line the image's init prints with the relay line's level after fas-edge stopped.
pub const RELAY_LINE: &str = "fas-init: relay ";

/// Modules the initramfs loads (with their dependencies), in order: the root file system
/// and the devices it can sit on (the Pi 4's SD slot is `emmc2`, sdhci-iproc; the legacy
/// sdhost is `bcm2835`; virtio for the QEMU check), then what fas-edge needs: the Pi 4's
/// USB ports (VL805 behind PCIe: its firmware loader, xhci), UVC cameras, and the vc4
/// display driver (whose fbdev emulation is `/dev/fb0`).
pub const INITRAMFS_MODULES: &[&str] = &[
    "ext4",
    "sdhci-iproc",
    "bcm2835",
    "virtio_pci",
    "virtio_blk",
    "reset-raspberrypi",
    "xhci-pci",
    "uvcvideo",
    "vc4",
];

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("board {board}: its profile says image = {kind:?}; `fas-boards image` makes SD images for image = \"sd\" boards and overlays for image = \"overlay\" boards")]
    WrongKind { board: String, kind: ImageKind },
    #[error("{file}: not a static aarch64 executable ({problem}); the image's root has no C library: build fas-edge for aarch64-unknown-linux-musl")]
    NotStaticAarch64 { file: PathBuf, problem: String },
    #[error("{file}: the partition table read back has {found} partitions, want 2 (boot, root)")]
    Layout { file: PathBuf, found: usize },
}

/// What a board's image carries besides the generated files: the SD image's root file
/// system ([`build_sd`]) and the Jetson overlay ([`crate::jetson::build_overlay`]) alike.
pub struct EdgeFiles<'a> {
    /// fas-edge built for aarch64-unknown-linux-musl (static).
    pub edge: &'a Path,
    pub bundle: Option<&'a Path>,
    /// Directory of the bundle signer's `.pub` key(s).
    pub keys: Option<&'a Path>,
    /// RetinaFace ONNX (`/usr/share/fas/retinaface_mnet025.onnx`).
    pub detector: Option<&'a Path>,
    /// The face-embedding network, dlib ResNet ONNX (`/usr/share/fas/dlib_face_resnet.onnx`,
    /// `access.face_model`'s default; the overlay's [`crate::jetson::FACE_MODEL`]): the
    /// boards' `[access] mode = "credential+face"` loads it at start.
    pub face_model: Option<&'a Path>,
    /// Directory holding MTCNN's three ONNX files ([`stage::MTCNN_FILES`]), installed
    /// beside the RetinaFace model, for `detector.kind = "mtcnn"`.
    pub mtcnn: Option<&'a Path>,
}

/// A built image.
#[derive(Debug, Clone)]
pub struct SdImage {
    pub path: PathBuf,
    pub boot: Partition,
    pub root: Partition,
    pub image_bytes: u64,
    /// Bytes of files on each partition.
    pub boot_content: u64,
    pub root_content: u64,
    pub kernel_version: String,
    /// Modules the initramfs loads, in order (`.ko` file names).
    pub modules: Vec<String>,
    /// Modules of [`INITRAMFS_MODULES`] that are built into the kernel (nothing to load).
    pub builtin: Vec<String>,
    pub elapsed: Duration,
}

const MIB: u64 = 1 << 20;

fn round_mib(n: u64) -> u64 {
    n.div_ceil(MIB) * MIB
}

/// Boot partition size for `content` bytes of files: FAT32 with one-sector clusters needs
/// at least 65525 clusters (~33 MiB); 64 MiB minimum, 20% and 16 MiB of room for kernel
/// updates.
pub fn boot_size(content: u64) -> u64 {
    round_mib((content + content / 5 + 16 * MIB).max(64 * MIB))
}

/// Root partition size: the files, 25% and 64 MiB for the audit log, calibration and
/// ext4's own metadata.
pub fn root_size(content: u64) -> u64 {
    round_mib(content + content / 4 + 64 * MIB)
}

/// The `sfdisk` script: DOS label, FAT32-LBA boot partition (bootable) at 1 MiB, Linux root
/// after it. Sizes in bytes, multiples of 1 MiB.
pub fn sfdisk_script(boot_bytes: u64, root_bytes: u64) -> String {
    let s = |b: u64| b / mbr::SECTOR;
    format!(
        "label: dos\nlabel-id: 0xfa5e0d00\nunit: sectors\n\n\
         start={}, size={}, type=c, bootable\n\
         start={}, size={}, type=83\n",
        s(MIB),
        s(boot_bytes),
        s(MIB + boot_bytes),
        s(root_bytes)
    )
}

/// Checks that `bytes` is an aarch64 ELF without a program interpreter (statically
/// linked): the root file system has no dynamic loader.
pub fn check_static_aarch64(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("no ELF header".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a little-endian 64-bit ELF".into());
    }
    let u16le = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let machine = u16le(18);
    if machine != 0xb7 {
        return Err(format!("e_machine {machine:#x}, want 0xb7 (aarch64)"));
    }
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (usize::from(u16le(54)), usize::from(u16le(56)));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let Some(h) = bytes.get(at..at + 4) else {
            return Err("program headers past the end of the file".into());
        };
        if u32::from_le_bytes(h.try_into().expect("4 bytes")) == 3 {
            return Err("dynamically linked (has PT_INTERP)".into());
        }
    }
    Ok(())
}

/// `config.txt` for the Pi 4 firmware.
pub fn config_txt() -> String {
    format!(
        "# Raspberry Pi 4 boot configuration, written by fas-boards.\n\
         # Debian's kernel with the mainline device tree (upstream_kernel), 64-bit.\n\
         arm_64bit=1\n\
         upstream_kernel=1\n\
         kernel={KERNEL_FILE}\n\
         initramfs {INITRD_FILE} followkernel\n\
         device_tree={DTB_FILE}\n\
         # The serial console on GPIO 14/15 (ttyS1).\n\
         enable_uart=1\n\
         disable_overscan=1\n\
         # The display is the kernel's (vc4's fbdev emulation is /dev/fb0).\n\
         disable_fw_kms_setup=1\n"
    )
}

/// `cmdline.txt`: the root is found by label; the last `console=` gets the init's output.
pub fn cmdline_txt() -> String {
    format!("console=tty1 console=ttyS1,115200 root=LABEL={ROOT_LABEL} rootwait panic=10\n")
}

fn initramfs_init(modules: &[String]) -> String {
    let mut s = format!(
        r#"#!/bin/busybox sh
# fas-boards initramfs: load the root device's modules, find the root by label, switch.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
die() {{ echo "fas-initramfs: $1; rebooting in 10 s"; sleep 10; reboot -f; }}
echo "fas-initramfs: loading {n} modules"
"#,
        n = modules.len()
    );
    for m in modules {
        s += &format!(
            "insmod /lib/modules/{m} 2>/dev/null || echo \"fas-initramfs: insmod {m} failed\"\n"
        );
    }
    s += &format!(
        r#"root=LABEL={ROOT_LABEL}
for a in $(cat /proc/cmdline); do
  case "$a" in root=*) root="${{a#root=}}";; esac
done
dev=
for i in $(seq 300); do
  case "$root" in
    LABEL=*) dev=$(findfs "$root" 2>/dev/null) ;;
    *) [ -b "$root" ] && dev=$root ;;
  esac
  [ -n "$dev" ] && break
  sleep 0.1
done
[ -n "$dev" ] || die "root $root not found"
mkdir -p /newroot
mount -t ext4 -o rw,noatime "$dev" /newroot || die "cannot mount $dev"
echo "fas-initramfs: root $dev ($root); switching to it"
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
"#
    );
    s
}

const INITTAB: &str = "# busybox init: fas-edge is the only service; no login on any console.\n\
::sysinit:/etc/init.d/rcS\n\
::respawn:/usr/sbin/fas-edge-supervise\n\
::ctrlaltdel:/bin/reboot\n\
::shutdown:/bin/umount -a -r\n";

fn rcs(board: &str) -> String {
    format!(
        r#"#!/bin/sh
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
[ -c /dev/null ] || mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=0755,nosuid,nodev run /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmp /tmp
mkdir -p /var/lib/fas
chmod 0750 /var/lib/fas
hostname fas-{board}
echo "fas-init: {board} root file system up ($(uname -r))"
"#
    )
}

fn supervise(profile: &Profile) -> String {
    let chip = profile
        .relay
        .chip
        .rsplit('/')
        .next()
        .unwrap_or(&profile.relay.chip)
        .to_string();
    let locked_level = if profile.relay.polarity == "active_low" {
        1
    } else {
        0
    };
    format!(
        r#"#!/bin/sh
# Starts fas-edge with the board's config and restarts it when it stops. fas-edge requests
# the relay line at the locked level and drives it locked again when it stops; after each
# stop `fas-edge lock` drives it locked once more (a crash or kill -9 skips fas-edge's own
# lock), and the line's level is read back through the legacy GPIO sysfs and printed.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
relay() {{
  parent=$(readlink -f /sys/bus/gpio/devices/{chip}/.. 2>/dev/null)
  base=
  for c in /sys/class/gpio/gpiochip*; do
    [ -n "$parent" ] && [ "$(readlink -f "$c/device")" = "$parent" ] && base=$(cat "$c/base")
  done
  if [ -z "$base" ]; then echo "{RELAY_LINE}{chip} line {line}: no such line"; return; fi
  # (not `n`: shell functions share variables, and `n` counts the runs below)
  g=$((base + {line}))
  if ! echo "$g" >/sys/class/gpio/export 2>/dev/null; then
    echo "{RELAY_LINE}{chip} line {line}: cannot be read (busy or out of range)"; return
  fi
  d=$(cat /sys/class/gpio/gpio$g/direction)
  v=$(cat /sys/class/gpio/gpio$g/value)
  echo "$g" >/sys/class/gpio/unexport
  if [ "$d" = in ]; then state="released (relay de-energised)"
  elif [ "$v" = {locked_level} ]; then state=locked
  else state=UNLOCKED; fi
  echo "{RELAY_LINE}{chip} line {line}: $d $v ($state)"
}}
n=0
while :; do
  n=$((n + 1))
  echo "{START_LINE}$n)"
  /usr/bin/fas-edge --config /etc/fas/edge.toml
  s=$?
  echo "{EXIT_LINE}$s; restarting in 2 s"
  # However it stopped (crash, kill -9): drive the relay locked before anything else.
  /usr/bin/fas-edge lock --config /etc/fas/edge.toml 2>&1 | sed 's/^/fas-init: lock: /'
  relay
  sleep 2
done
"#,
        line = profile.relay.line,
    )
}

/// Downloads (once, cached) and unpacks Debian's `raspi-firmware`; returns the directory
/// holding `start4.elf`, `fixup4.dat`, `bootcode.bin`, ….
pub fn fetch_firmware(cache: &Path) -> Result<PathBuf> {
    let root = cache.join("debian").join("raspi-firmware");
    let dir = root.join("usr/lib/raspi-firmware");
    if !root.join(".complete").exists() {
        let apt = Apt::new(cache, "arm64", "bookworm")?;
        let deb = apt.download("raspi-firmware")?;
        let _ = std::fs::remove_dir_all(&root);
        debian::extract(&deb, &root)?;
        if !dir.join("start4.elf").exists() {
            bail!(
                "{}: no start4.elf after unpacking {}",
                dir.display(),
                deb.display()
            );
        }
        std::fs::write(root.join(".complete"), b"")?;
    }
    Ok(dir)
}

/// The initramfs (uncompressed newc cpio) and the `.ko` names it loads, plus the modules
/// of [`INITRAMFS_MODULES`] built into the kernel.
fn initramfs(k: &Kernel, busybox: &Path) -> Result<(Vec<u8>, Vec<String>, Vec<String>)> {
    let mut entries = Vec::new();
    for d in ["bin", "dev", "proc", "sys", "lib", "lib/modules", "newroot"] {
        entries.push(Entry::Dir {
            path: d.into(),
            mode: 0o755,
        });
    }
    entries.push(Entry::File {
        path: "bin/busybox".into(),
        mode: 0o755,
        data: std::fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?,
    });
    let mut names = Vec::new();
    let mut builtin = Vec::new();
    for module in INITRAMFS_MODULES {
        let kos = match guest::module_order(k, module) {
            Ok(kos) => kos,
            Err(e) if e.to_string().contains("built into") => {
                builtin.push(module.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        for ko in kos {
            let name = ko
                .file_name()
                .and_then(|n| n.to_str())
                .context("module file name")?
                .to_string();
            if names.contains(&name) {
                continue;
            }
            entries.push(Entry::File {
                path: format!("lib/modules/{name}"),
                mode: 0o644,
                data: std::fs::read(&ko).with_context(|| format!("reading {}", ko.display()))?,
            });
            names.push(name);
        }
    }
    entries.push(Entry::File {
        path: "init".into(),
        mode: 0o755,
        data: initramfs_init(&names).into_bytes(),
    });
    let mut buf = Vec::new();
    cpio::write(&mut buf, &entries)?;
    Ok((buf, names, builtin))
}

/// Stages the boot partition's files in `dir`; returns their total size.
fn stage_boot(cache: &Path, k: &Kernel, initrd: &[u8], dir: &Path) -> Result<u64> {
    let fw = fetch_firmware(cache)?;
    let mut n = 0;
    for e in std::fs::read_dir(&fw).with_context(|| format!("reading {}", fw.display()))? {
        let p = e?.path();
        if p.is_file() {
            let name = p.file_name().context("firmware file name")?;
            n += stage::copy(&p, &dir.join(name), 0o644)?;
        }
    }
    let dtb = k.root.join(format!(
        "usr/lib/linux-image-{}/broadcom/{DTB_FILE}",
        k.version
    ));
    n += stage::copy(&dtb, &dir.join(DTB_FILE), 0o644)?;
    n += stage::copy(&k.image, &dir.join(KERNEL_FILE), 0o644)?;
    n += stage::write(&dir.join(INITRD_FILE), initrd, 0o644)?;
    n += stage::write(&dir.join("config.txt"), config_txt().as_bytes(), 0o644)?;
    n += stage::write(&dir.join("cmdline.txt"), cmdline_txt().as_bytes(), 0o644)?;
    Ok(n)
}

/// Stages the root file system in `dir`; returns the size of its files.
fn stage_root(
    profile: &Profile,
    busybox: &Path,
    inputs: &EdgeFiles<'_>,
    dir: &Path,
) -> Result<u64> {
    for d in [
        "bin",
        "sbin",
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "root",
        "mnt",
        "etc/init.d",
        "etc/fas/keys",
        "usr/bin",
        "usr/sbin",
        "usr/share/fas",
        "var/lib/fas",
        "var/log",
    ] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    let mut n = stage::copy(busybox, &dir.join("bin/busybox"), 0o755)?;
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh"))?;
    std::os::unix::fs::symlink("../bin/busybox", dir.join("sbin/init"))?;
    n += stage::copy(inputs.edge, &dir.join("usr/bin/fas-edge"), 0o755)?;
    n += stage::write(&dir.join("etc/inittab"), INITTAB.as_bytes(), 0o644)?;
    n += stage::write(
        &dir.join("etc/init.d/rcS"),
        rcs(&profile.name).as_bytes(),
        0o755,
    )?;
    n += stage::write(
        &dir.join("usr/sbin/fas-edge-supervise"),
        supervise(profile).as_bytes(),
        0o755,
    )?;
    n += stage::write(
        &dir.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    )?;
    n += stage::write(
        &dir.join("etc/group"),
        b"root:x:0:\nvideo:x:44:\ngpio:x:997:\n",
        0o644,
    )?;
    n += stage::write(
        &dir.join("etc/hostname"),
        format!("fas-{}\n", profile.name).as_bytes(),
        0o644,
    )?;
    n += stage::write(
        &dir.join("etc/fas/edge.toml"),
        profile.edge_config().as_bytes(),
        0o640,
    )?;
    if let Some(b) = inputs.bundle {
        n += stage::copy(b, &dir.join("etc/fas/model.fasb"), 0o644)?;
    }
    if let Some(k) = inputs.keys {
        for (name, p) in stage::signer_keys(k)? {
            n += stage::copy(&p, &dir.join("etc/fas/keys").join(name), 0o644)?;
        }
    }
    if let Some(d) = inputs.detector {
        n += stage::copy(d, &dir.join("usr/share/fas/retinaface_mnet025.onnx"), 0o644)?;
    }
    if let Some(f) = inputs.face_model {
        n += stage::copy(
            f,
            &dir.join("usr/share/fas").join(stage::FACE_MODEL_FILE),
            0o644,
        )?;
    }
    if let Some(d) = inputs.mtcnn {
        for (name, p) in stage::mtcnn_files(d)? {
            n += stage::copy(&p, &dir.join("usr/share/fas").join(name), 0o644)?;
        }
    }
    Ok(n)
}

fn os(p: &Path) -> &OsStr {
    p.as_os_str()
}

/// Makes a FAT32 file system image of `size` bytes holding the files of `dir`.
fn make_fat(dir: &Path, size: u64, out: &Path) -> Result<()> {
    let _ = std::fs::remove_file(out);
    let kib = (size / 1024).to_string();
    hosttools::run(
        MKFS_VFAT,
        &[
            "-C".as_ref(),
            "-F".as_ref(),
            "32".as_ref(),
            "-s".as_ref(),
            "1".as_ref(),
            "-n".as_ref(),
            "FAS-BOOT".as_ref(),
            os(out),
            kib.as_ref(),
        ],
    )?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    let mut args: Vec<&OsStr> = vec![
        "-i".as_ref(),
        os(out),
        "-s".as_ref(),
        "-p".as_ref(),
        "-Q".as_ref(),
        "-m".as_ref(),
    ];
    args.extend(files.iter().map(|p| p.as_os_str()));
    args.push("::".as_ref());
    hosttools::run(MCOPY, &args)?;
    Ok(())
}

/// Makes an ext4 file system image of `size` bytes holding `dir`, labelled [`ROOT_LABEL`].
fn make_ext4(dir: &Path, size: u64, out: &Path) -> Result<()> {
    let _ = std::fs::remove_file(out);
    let blocks = (size / 4096).to_string();
    hosttools::run(
        MKFS_EXT4,
        &[
            "-q".as_ref(),
            "-F".as_ref(),
            "-b".as_ref(),
            "4096".as_ref(),
            "-L".as_ref(),
            ROOT_LABEL.as_ref(),
            "-E".as_ref(),
            "root_owner=0:0".as_ref(),
            "-d".as_ref(),
            os(dir),
            os(out),
            blocks.as_ref(),
        ],
    )?;
    Ok(())
}

/// Copies all of `src` into `dst` at byte `offset` (what `dd conv=notrunc seek=` does).
fn place(src: &Path, dst: &mut std::fs::File, offset: u64) -> Result<()> {
    let mut f = std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
    dst.seek(SeekFrom::Start(offset))?;
    std::io::copy(&mut f, dst).with_context(|| format!("placing {}", src.display()))?;
    Ok(())
}

/// The partitions of an image file, read back from its MBR.
pub fn partitions(image: &Path) -> Result<Vec<Partition>> {
    let mut s0 = [0u8; 512];
    std::fs::File::open(image)
        .and_then(|mut f| f.read_exact(&mut s0))
        .with_context(|| format!("reading the partition table of {}", image.display()))?;
    mbr::read(&s0).with_context(|| image.display().to_string())
}

/// Builds `<out_dir>/fas-<board>.img` for an `image = "sd"` board.
pub fn build_sd(
    profile: &Profile,
    cache: &Path,
    inputs: &EdgeFiles<'_>,
    out_dir: &Path,
) -> Result<SdImage> {
    let t0 = Instant::now();
    if profile.image != ImageKind::Sd {
        return Err(ImageError::WrongKind {
            board: profile.name.clone(),
            kind: profile.image,
        }
        .into());
    }
    hosttools::require(hosttools::SD_IMAGE)?;
    let edge_bytes =
        std::fs::read(inputs.edge).with_context(|| format!("reading {}", inputs.edge.display()))?;
    check_static_aarch64(&edge_bytes).map_err(|problem| ImageError::NotStaticAarch64 {
        file: inputs.edge.to_path_buf(),
        problem,
    })?;
    drop(edge_bytes);
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let (kernel, busybox) = guest::fetch(cache)?;
    let (initrd, modules, builtin) = initramfs(&kernel, &busybox)?;

    let work = out_dir.join(format!(".fas-{}-work", profile.name));
    let _ = std::fs::remove_dir_all(&work);
    let (boot_dir, root_dir) = (work.join("boot"), work.join("root"));
    std::fs::create_dir_all(&boot_dir)?;
    std::fs::create_dir_all(&root_dir)?;
    let boot_content = stage_boot(cache, &kernel, &initrd, &boot_dir)?;
    let root_content = stage_root(profile, &busybox, inputs, &root_dir)?;
    let (boot_bytes, root_bytes) = (boot_size(boot_content), root_size(root_content));
    let (fat, ext4) = (work.join("boot.vfat"), work.join("root.ext4"));
    make_fat(&boot_dir, boot_bytes, &fat)?;
    make_ext4(&root_dir, root_bytes, &ext4)?;

    let image_bytes = MIB + boot_bytes + root_bytes;
    let tmp = work.join("image.tmp");
    {
        let f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.set_len(image_bytes)?;
    }
    hosttools::run_with_input(
        SFDISK,
        &[
            "--quiet".as_ref(),
            "--no-reread".as_ref(),
            "--no-tell-kernel".as_ref(),
            os(&tmp),
        ],
        &sfdisk_script(boot_bytes, root_bytes),
    )?;
    let parts = partitions(&tmp)?;
    let [boot, root] = parts[..] else {
        return Err(ImageError::Layout {
            file: tmp,
            found: parts.len(),
        }
        .into());
    };
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&tmp)?;
        place(&fat, &mut f, boot.offset_bytes())?;
        place(&ext4, &mut f, root.offset_bytes())?;
        f.flush()?;
        f.sync_all()?;
    }
    let path = out_dir.join(format!("fas-{}.img", profile.name));
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    std::fs::remove_dir_all(&work)?;
    Ok(SdImage {
        path,
        boot,
        root,
        image_bytes,
        boot_content,
        root_content,
        kernel_version: kernel.version,
        modules,
        builtin,
        elapsed: t0.elapsed(),
    })
}

/// Copies `name` out of the image's boot partition into `to` (`mcopy -i IMAGE@@OFFSET`).
pub fn copy_out_of_boot(image: &Path, boot: &Partition, name: &str, to: &Path) -> Result<()> {
    let spec = format!("{}@@{}", image.display(), boot.offset_bytes());
    let _ = std::fs::remove_file(to);
    hosttools::run(
        MCOPY,
        &[
            "-n".as_ref(),
            "-i".as_ref(),
            spec.as_ref(),
            format!("::{name}").as_ref(),
            os(to),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_leave_room_and_align_to_mib() {
        assert_eq!(boot_size(0), 64 * MIB);
        let b = boot_size(100 * MIB + 3);
        assert!(b >= 136 * MIB && b.is_multiple_of(MIB), "{b}");
        let r = root_size(60 * MIB);
        assert_eq!(r, 139 * MIB);
        assert!(root_size(1).is_multiple_of(MIB));
    }

    #[test]
    fn the_sfdisk_script_makes_the_layout_the_mbr_reader_sees() {
        let s = sfdisk_script(64 * MIB, 128 * MIB);
        assert!(
            s.contains("start=2048, size=131072, type=c, bootable"),
            "{s}"
        );
        assert!(s.contains("start=133120, size=262144, type=83"), "{s}");
        if hosttools::find(SFDISK).is_err() {
            eprintln!(
                "skipped the sfdisk half: {}",
                hosttools::find(SFDISK).unwrap_err()
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("x.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(MIB + 192 * MIB)
            .unwrap();
        hosttools::run_with_input(SFDISK, &["--quiet".as_ref(), img.as_os_str()], &s).unwrap();
        let p = partitions(&img).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].kind, p[0].bootable, p[0].offset_bytes()),
            (0x0c, true, MIB)
        );
        assert_eq!(p[0].len_bytes(), 64 * MIB);
        assert_eq!((p[1].kind, p[1].bootable), (0x83, false));
        assert_eq!(p[1].offset_bytes(), 65 * MIB);
        assert_eq!(p[1].len_bytes(), 128 * MIB);
    }

    #[test]
    fn only_static_aarch64_executables_go_into_the_root() {
        // A minimal aarch64 ELF64 header with one PT_LOAD, then the same with PT_INTERP.
        let mut elf = vec![0u8; 64 + 56];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18..20].copy_from_slice(&0xb7u16.to_le_bytes());
        elf[32..40].copy_from_slice(&64u64.to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(check_static_aarch64(&elf), Ok(()));
        elf[64..68].copy_from_slice(&3u32.to_le_bytes());
        assert!(check_static_aarch64(&elf)
            .unwrap_err()
            .contains("PT_INTERP"));
        elf[18..20].copy_from_slice(&0x3eu16.to_le_bytes());
        assert!(check_static_aarch64(&elf).unwrap_err().contains("0x3e"));
        assert!(check_static_aarch64(b"#!/bin/sh\n").is_err());
        // The host's own `sh` is not one (x86_64, or dynamically linked).
        let sh = std::fs::read("/bin/sh").unwrap();
        assert!(check_static_aarch64(&sh).is_err() || cfg!(target_arch = "aarch64"));
    }

    #[test]
    fn the_root_holds_the_detector_and_the_face_model_where_the_config_points() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let p = d.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let busybox = file("busybox", b"\x7fELF busybox");
        let edge = file("fas-edge", b"\x7fELF edge");
        let detector = file("det.onnx", b"retinaface stand-in");
        let face = file("face.onnx", b"dlib resnet stand-in");
        let profile = Profile::load("rpi4").unwrap();
        let root = d.path().join("root");
        let n = stage_root(
            &profile,
            &busybox,
            &EdgeFiles {
                edge: &edge,
                bundle: None,
                keys: None,
                detector: Some(&detector),
                face_model: Some(&face),
                mtcnn: None,
            },
            &root,
        )
        .unwrap();
        let cfg: toml::Table = std::fs::read_to_string(root.join("etc/fas/edge.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let face_at = cfg["access"]
            .get("face_model")
            .map_or("/usr/share/fas/dlib_face_resnet.onnx", |v| {
                v.as_str().unwrap()
            });
        for (from, at) in [
            (&detector, cfg["detector"]["model"].as_str().unwrap()),
            (&face, face_at),
        ] {
            let p = root.join(at.trim_start_matches('/'));
            assert_eq!(
                std::fs::read(&p).unwrap(),
                std::fs::read(from).unwrap(),
                "{at}"
            );
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "{at}");
        }
        assert_eq!(face_at, "/usr/share/fas/dlib_face_resnet.onnx");
        assert!(n >= std::fs::metadata(&face).unwrap().len());
    }

    #[test]
    fn boot_files_agree_with_each_other() {
        let c = config_txt();
        assert!(c.contains("arm_64bit=1"));
        assert!(c.contains(&format!("kernel={KERNEL_FILE}\n")));
        assert!(c.contains(&format!("initramfs {INITRD_FILE} followkernel")));
        assert!(c.contains(&format!("device_tree={DTB_FILE}")));
        let cmd = cmdline_txt();
        assert_eq!(cmd.lines().count(), 1, "cmdline.txt is one line");
        assert!(cmd.contains(&format!("root=LABEL={ROOT_LABEL}")));
        let init = initramfs_init(&["ext4.ko".into()]);
        assert!(init.contains("insmod /lib/modules/ext4.ko"));
        assert!(init.contains("exec switch_root /newroot /sbin/init"));
        let rpi4 = Profile::load("rpi4").unwrap();
        let sup = supervise(&rpi4);
        assert!(sup.contains("/usr/bin/fas-edge --config /etc/fas/edge.toml"));
        assert!(
            sup.contains("/sys/bus/gpio/devices/gpiochip0/..") && sup.contains("g=$((base + 17))")
        );
        assert!(
            sup.contains("elif [ \"$v\" = 0 ]; then state=locked"),
            "active high locks low"
        );
        assert!(INITTAB.contains("respawn:/usr/sbin/fas-edge-supervise"));
    }
}
