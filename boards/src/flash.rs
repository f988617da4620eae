//! `fas-boards flash`: writing an image to an SD card or USB drive without writing to the
//! wrong disk. The safety checks are pure functions over parsed sysfs and
//! `/proc/self/mountinfo` data ([`BlockDevice`], [`parse_mountinfo`], [`refusals`]); the
//! write is plain buffered 4 MiB writes, `fsync`, then a read-back whose SHA-256 must equal
//! the image's.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// Write and read-back block size.
pub const BLOCK: usize = 4 << 20;

/// One mount, from a line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the mounted device.
    pub dev: (u32, u32),
    pub mount_point: String,
    pub fs_type: String,
    /// The mount source (`/dev/sdb1`).
    pub source: String,
}

/// Parses `/proc/self/mountinfo` (proc(5)); lines it cannot read are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let unescape = |s: &str| {
        s.replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n")
            .replace("\\134", "\\")
    };
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let (maj, min) = f.get(2)?.split_once(':')?;
            let mut p = post.split(' ');
            Some(Mount {
                dev: (maj.parse().ok()?, min.parse().ok()?),
                mount_point: unescape(f.get(4)?),
                fs_type: p.next()?.to_string(),
                source: unescape(p.next()?),
            })
        })
        .collect()
}

/// A whole disk as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// Kernel name (`sdb`, `mmcblk0`).
    pub name: String,
    pub dev: (u32, u32),
    pub size_bytes: u64,
    /// `/sys/block/<name>/removable`.
    pub removable: bool,
    /// The device's sysfs path runs through a USB bus.
    pub usb: bool,
    /// Vendor and model, when sysfs has them.
    pub model: String,
    /// Partitions: kernel name, `major:minor`, size in bytes.
    pub partitions: Vec<(String, (u32, u32), u64)>,
}

fn parse_dev(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

impl BlockDevice {
    /// Reads `<sys_block>/<name>` (`/sys/block/sdb`).
    pub fn from_sysfs(sys_block: &Path, name: &str) -> Result<BlockDevice> {
        let d = sys_block.join(name);
        let read = |rel: &str| std::fs::read_to_string(d.join(rel)).map(|s| s.trim().to_string());
        let dev = read("dev")
            .ok()
            .and_then(|s| parse_dev(&s))
            .with_context(|| {
                format!(
                    "{}: no such whole disk (give the disk, /dev/sdX or /dev/mmcblkN, not a partition)",
                    d.display()
                )
            })?;
        let sectors: u64 = read("size")
            .with_context(|| format!("{}/size", d.display()))?
            .parse()
            .with_context(|| format!("{}/size is not a number", d.display()))?;
        let removable = read("removable").is_ok_and(|s| s == "1");
        let real = std::fs::canonicalize(&d).unwrap_or_else(|_| d.clone());
        let usb = real
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with("usb"));
        let model = [
            read("device/vendor"),
            read("device/model"),
            read("device/name"),
        ]
        .into_iter()
        .filter_map(|r| r.ok())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        let mut partitions = Vec::new();
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            let pname = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !pname.starts_with(name) || !p.join("partition").exists() {
                continue;
            }
            let pdev = std::fs::read_to_string(p.join("dev"))
                .ok()
                .and_then(|s| parse_dev(&s));
            let psize = std::fs::read_to_string(p.join("size"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            if let (Some(pdev), Some(psize)) = (pdev, psize) {
                partitions.push((pname, pdev, psize * 512));
            }
        }
        partitions.sort();
        Ok(BlockDevice {
            name: name.to_string(),
            dev,
            size_bytes: sectors * 512,
            removable,
            usb,
            model,
            partitions,
        })
    }

    /// One line per partition, for the confirmation prompt.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "/dev/{} {} ({:.1} GiB{}{})\n",
            self.name,
            if self.model.is_empty() {
                "(no model)"
            } else {
                &self.model
            },
            self.size_bytes as f64 / (1u64 << 30) as f64,
            if self.removable { ", removable" } else { "" },
            if self.usb { ", USB" } else { "" },
        );
        for (n, _, size) in &self.partitions {
            s += &format!("  /dev/{n} {:.1} MiB\n", *size as f64 / (1u64 << 20) as f64);
        }
        s
    }
}

/// Why a device will not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{node} is mounted on {mount_point}: unmount it first (`umount {node}`)")]
    Mounted { node: String, mount_point: String },
    #[error("/dev/{0} holds the root file system: this is the disk the system runs from")]
    HoldsRoot(String),
    #[error("/dev/{0} holds /boot: this is the disk the system boots from")]
    HoldsBoot(String),
    #[error("/dev/{0} is neither removable nor USB-attached: fas-boards flash writes SD cards and USB drives only")]
    NotRemovable(String),
    #[error(
        "/dev/{device} has {device_bytes} bytes, the image needs {image_bytes}: use a larger card"
    )]
    TooSmall {
        device: String,
        device_bytes: u64,
        image_bytes: u64,
    },
}

/// Every reason not to write `image_bytes` onto `dev` given the current `mounts`.
pub fn refusals(dev: &BlockDevice, mounts: &[Mount], image_bytes: u64) -> Vec<Refusal> {
    let mut r = Vec::new();
    let mut nodes = vec![(dev.name.clone(), dev.dev)];
    nodes.extend(dev.partitions.iter().map(|(n, d, _)| (n.clone(), *d)));
    let (mut root, mut boot) = (false, false);
    for m in mounts {
        let Some((node, _)) = nodes
            .iter()
            .find(|(n, d)| m.dev == *d || m.source == format!("/dev/{n}"))
        else {
            continue;
        };
        root |= m.mount_point == "/";
        boot |= m.mount_point == "/boot" || m.mount_point.starts_with("/boot/");
        r.push(Refusal::Mounted {
            node: format!("/dev/{node}"),
            mount_point: m.mount_point.clone(),
        });
    }
    if root {
        r.push(Refusal::HoldsRoot(dev.name.clone()));
    }
    if boot {
        r.push(Refusal::HoldsBoot(dev.name.clone()));
    }
    if !dev.removable && !dev.usb {
        r.push(Refusal::NotRemovable(dev.name.clone()));
    }
    if dev.size_bytes < image_bytes {
        r.push(Refusal::TooSmall {
            device: dev.name.clone(),
            device_bytes: dev.size_bytes,
            image_bytes,
        });
    }
    r
}

/// The kernel name of a disk path (`/dev/sdb` → `sdb`), following symlinks
/// (`/dev/disk/by-id/…`).
pub fn kernel_name(device: &Path) -> Result<String> {
    let real = std::fs::canonicalize(device)
        .with_context(|| format!("{}: no such device", device.display()))?;
    let name = real
        .strip_prefix("/dev")
        .ok()
        .and_then(|p| p.to_str())
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .with_context(|| format!("{} is not a /dev node", device.display()))?;
    Ok(name.to_string())
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct FlashReport {
    pub bytes: u64,
    pub sha256: String,
    pub write: Duration,
    pub verify: Duration,
}

/// Writes `image` to the start of `target` in [`BLOCK`] writes (no `O_DIRECT`), `fsync`s,
/// reads the same number of bytes back and compares SHA-256s. `progress(done, total)` is
/// called after each block of the write and of the read-back.
pub fn write_and_verify(
    image: &Path,
    target: &Path,
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<FlashReport> {
    let mut src =
        std::fs::File::open(image).with_context(|| format!("opening {}", image.display()))?;
    let total = src.metadata()?.len();
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .open(target)
        .with_context(|| format!("opening {} for writing", target.display()))?;
    let t0 = Instant::now();
    let mut buf = vec![0u8; BLOCK];
    let mut want = Sha256::new();
    let mut done = 0u64;
    loop {
        let n = read_full(&mut src, &mut buf)?;
        if n == 0 {
            break;
        }
        want.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .with_context(|| format!("writing {} at byte {done}", target.display()))?;
        done += n as u64;
        progress("write", done, total);
    }
    dst.flush()?;
    dst.sync_all()
        .with_context(|| format!("fsync of {}", target.display()))?;
    drop(dst);
    let write = t0.elapsed();
    if done != total {
        bail!(
            "{} changed while it was written ({done} of {total} bytes)",
            image.display()
        );
    }
    let sha256 = hex::encode(want.finalize());
    let verify = verify(target, total, &sha256, &mut progress)?;
    Ok(FlashReport {
        bytes: total,
        sha256,
        write,
        verify,
    })
}

/// Reads the first `len` bytes of `target` back and compares their SHA-256 with `sha256`.
pub fn verify(
    target: &Path,
    len: u64,
    sha256: &str,
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<Duration> {
    let t0 = Instant::now();
    let mut back = std::fs::File::open(target)
        .with_context(|| format!("opening {} to read back", target.display()))?;
    let mut buf = vec![0u8; BLOCK];
    let mut got = Sha256::new();
    let mut left = len;
    while left > 0 {
        let want_n = (left as usize).min(BLOCK);
        let n = read_full(&mut back, &mut buf[..want_n])?;
        if n == 0 {
            bail!(
                "{} ended {left} bytes before the image did",
                target.display()
            );
        }
        got.update(&buf[..n]);
        left -= n as u64;
        progress("verify", len - left, len);
    }
    let got = hex::encode(got.finalize());
    if got != sha256 {
        bail!(
            "read-back mismatch on {}: image sha256 {sha256}, device prefix sha256 {got} — the card may be failing or fake",
            target.display()
        );
    }
    Ok(t0.elapsed())
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The device (or, with `allow_file`, a regular file) that `flash` will write, checked.
pub enum Target {
    Device(BlockDevice),
    /// `--allow-file`: a regular file stands in for the device (tests, making copies).
    File(PathBuf),
}

/// Resolves and checks `device` for an image of `image_bytes`; refusals are one error
/// listing every reason.
pub fn check_target(device: &Path, image_bytes: u64, allow_file: bool) -> Result<Target> {
    let meta = std::fs::metadata(device);
    if allow_file && meta.as_ref().is_ok_and(|m| m.is_file()) {
        return Ok(Target::File(device.to_path_buf()));
    }
    if meta.as_ref().is_ok_and(|m| m.is_file()) {
        bail!(
            "{} is a regular file, not a device (pass --allow-file to write a file)",
            device.display()
        );
    }
    let name = kernel_name(device)?;
    let dev = BlockDevice::from_sysfs(Path::new("/sys/block"), &name)?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let r = refusals(&dev, &parse_mountinfo(&mountinfo), image_bytes);
    if !r.is_empty() {
        let reasons: Vec<String> = r.iter().map(|x| format!("  - {x}")).collect();
        bail!("refusing to write /dev/{name}:\n{}", reasons.join("\n"));
    }
    Ok(Target::Device(dev))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
23 22 259:1 / /boot/efi rw,relatime shared:2 - vfat /dev/nvme0n1p1 rw,fmask=0077
24 22 0:21 / /proc rw,nosuid - proc proc rw
40 22 8:17 / /media/me/My\\040Card rw,nosuid shared:30 - vfat /dev/sdb1 rw,uid=1000
";

    fn card() -> BlockDevice {
        BlockDevice {
            name: "sdb".into(),
            dev: (8, 16),
            size_bytes: 32 << 30,
            removable: true,
            usb: true,
            model: "Generic SD/MMC".into(),
            partitions: vec![
                ("sdb1".into(), (8, 17), 256 << 20),
                ("sdb2".into(), (8, 18), 1 << 30),
            ],
        }
    }

    fn system_disk() -> BlockDevice {
        BlockDevice {
            name: "nvme0n1".into(),
            dev: (259, 0),
            size_bytes: 512 << 30,
            removable: false,
            usb: false,
            model: "Samsung SSD".into(),
            partitions: vec![
                ("nvme0n1p1".into(), (259, 1), 512 << 20),
                ("nvme0n1p2".into(), (259, 2), 500 << 30),
            ],
        }
    }

    #[test]
    fn parses_mountinfo_with_escapes() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].dev, (259, 2));
        assert_eq!(m[0].mount_point, "/");
        assert_eq!(m[3].mount_point, "/media/me/My Card");
        assert_eq!(
            (m[3].fs_type.as_str(), m[3].source.as_str()),
            ("vfat", "/dev/sdb1")
        );
        assert!(parse_mountinfo("garbage\n1 2 x y z - a b").is_empty());
    }

    #[test]
    fn refuses_mounted_system_fixed_and_small_disks() {
        let mounts = parse_mountinfo(MOUNTINFO);
        // The card with a mounted partition: only that.
        assert_eq!(
            refusals(&card(), &mounts, 400 << 20),
            [Refusal::Mounted {
                node: "/dev/sdb1".into(),
                mount_point: "/media/me/My Card".into()
            }]
        );
        // Unmounted, it is fine; too small, it is not.
        let unmounted: Vec<Mount> = mounts
            .iter()
            .filter(|m| m.dev != (8, 17))
            .cloned()
            .collect();
        assert!(refusals(&card(), &unmounted, 400 << 20).is_empty());
        let r = refusals(&card(), &unmounted, 64 << 30);
        assert!(
            matches!(r[..], [Refusal::TooSmall { image_bytes, .. }] if image_bytes == 64 << 30)
        );
        // The system disk: mounted twice, root, boot, not removable.
        let r = refusals(&system_disk(), &mounts, 400 << 20);
        assert!(r.contains(&Refusal::HoldsRoot("nvme0n1".into())), "{r:?}");
        assert!(r.contains(&Refusal::HoldsBoot("nvme0n1".into())), "{r:?}");
        assert!(
            r.contains(&Refusal::NotRemovable("nvme0n1".into())),
            "{r:?}"
        );
        assert_eq!(
            r.iter()
                .filter(|x| matches!(x, Refusal::Mounted { .. }))
                .count(),
            2
        );
        // A fixed disk on USB (a USB SSD) is allowed; a fixed internal one is not.
        let mut usb_ssd = system_disk();
        usb_ssd.usb = true;
        assert!(!refusals(&usb_ssd, &[], 1).contains(&Refusal::NotRemovable("nvme0n1".into())));
        // A whole-disk mount (no partition table) is caught by major:minor too.
        let whole = parse_mountinfo("50 22 8:16 / /mnt rw - ext4 /dev/disk/by-label/x rw\n");
        assert!(matches!(
            refusals(&card(), &whole, 1)[..],
            [Refusal::Mounted { .. }]
        ));
    }

    #[test]
    fn reads_a_sysfs_tree() {
        let d = tempfile::tempdir().unwrap();
        let devices = d.path().join(
            "devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb",
        );
        std::fs::create_dir_all(devices.join("sdb1")).unwrap();
        std::fs::create_dir_all(devices.join("device")).unwrap();
        std::fs::create_dir_all(devices.join("queue")).unwrap();
        let w = |p: &str, s: &str| std::fs::write(devices.join(p), s).unwrap();
        w("dev", "8:16\n");
        w("size", "62333952\n");
        w("removable", "0\n");
        w("device/vendor", "Generic \n");
        w("device/model", "STORAGE DEVICE  \n");
        w("sdb1/dev", "8:17\n");
        w("sdb1/size", "524288\n");
        w("sdb1/partition", "1\n");
        let block = d.path().join("block");
        std::fs::create_dir(&block).unwrap();
        std::os::unix::fs::symlink(&devices, block.join("sdb")).unwrap();
        let b = BlockDevice::from_sysfs(&block, "sdb").unwrap();
        assert_eq!(b.dev, (8, 16));
        assert_eq!(b.size_bytes, 62333952 * 512);
        assert!(!b.removable && b.usb, "USB-attached through its sysfs path");
        assert_eq!(b.model, "Generic STORAGE DEVICE");
        assert_eq!(b.partitions, [("sdb1".to_string(), (8, 17), 524288 * 512)]);
        assert!(b.describe().contains("/dev/sdb1 256.0 MiB"));
        let e = BlockDevice::from_sysfs(&block, "sdb1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a partition"), "{e}");
    }

    #[test]
    fn writes_verifies_and_catches_a_bad_read_back() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("x.img");
        let data: Vec<u8> = (0..(BLOCK * 2 + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&img, &data).unwrap();
        // The "device" is larger and holds old data past the image.
        let dev = d.path().join("card");
        std::fs::write(&dev, vec![0xee; BLOCK * 4]).unwrap();
        let mut calls = Vec::new();
        let r = write_and_verify(&img, &dev, |stage, done, total| {
            calls.push((stage.to_string(), done, total))
        })
        .unwrap();
        assert_eq!(r.bytes, data.len() as u64);
        assert_eq!(r.sha256, hex::encode(Sha256::digest(&data)));
        let back = std::fs::read(&dev).unwrap();
        assert_eq!(&back[..data.len()], &data[..]);
        assert!(
            back[data.len()..].iter().all(|&b| b == 0xee),
            "past the image untouched"
        );
        assert_eq!(calls.iter().filter(|c| c.0 == "write").count(), 3);
        assert_eq!(
            calls.last().unwrap(),
            &("verify".to_string(), r.bytes, r.bytes)
        );
        // A card that returns other bytes than were written (one flipped bit), or fewer,
        // fails the read-back.
        let mut bad = back.clone();
        bad[BLOCK + 7] ^= 1;
        std::fs::write(&dev, &bad).unwrap();
        let e = verify(&dev, r.bytes, &r.sha256, |_, _, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("read-back mismatch"), "{e}");
        std::fs::write(&dev, &data[..BLOCK]).unwrap();
        let e = verify(&dev, r.bytes, &r.sha256, |_, _, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("ended"), "{e}");
        // A device that takes no writes fails the write.
        if Path::new("/dev/full").exists() {
            assert!(write_and_verify(&img, Path::new("/dev/full"), |_, _, _| {}).is_err());
        }
        // check_target: a regular file needs --allow-file.
        assert!(matches!(
            check_target(&dev, 1, true).unwrap(),
            Target::File(_)
        ));
        let e = check_target(&dev, 1, false).err().unwrap().to_string();
        assert!(e.contains("--allow-file"), "{e}");
    }
}
