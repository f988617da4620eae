//! The boot check of an SD image: QEMU 7.2 has no Raspberry Pi 4 machine, so the image is
//! attached as a virtio disk to `qemu-system-aarch64 -M virt -cpu cortex-a72`, booted with
//! the kernel, initramfs and `cmdline.txt` taken out of the image's own boot partition, and
//! the serial log is read for the image's own boot chain: initramfs → root by label → the
//! image's init → fas-edge started, stopped fail-closed (no camera, no relay line 17 on
//! `virt`) and restarted. The door must never open.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::hosttools::{self, QEMU_AARCH64};
use crate::image::{self, EXIT_LINE, INITRD_FILE, KERNEL_FILE, RELAY_LINE, START_LINE};

/// What a boot produced.
#[derive(Debug, Clone)]
pub struct VirtBoot {
    pub serial: String,
    pub elapsed: Duration,
    /// The guest ran past the limit and was killed.
    pub timed_out: bool,
    /// Seconds from start until the image's init first started fas-edge.
    pub first_start_s: Option<f64>,
}

/// Boots `image` under `virt` until `done(serial log)` holds, the guest stops, or `limit`
/// passes; the guest is killed then. Writes go to a QEMU snapshot: the image is unchanged.
pub fn boot_virt(
    image: &Path,
    work: &Path,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<VirtBoot> {
    let qemu = hosttools::find(QEMU_AARCH64)?;
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let parts = image::partitions(image)?;
    let boot = parts
        .first()
        .with_context(|| format!("{}: no partitions", image.display()))?;
    let (kernel, initrd, cmdline) = (
        work.join(KERNEL_FILE),
        work.join(INITRD_FILE),
        work.join("cmdline.txt"),
    );
    image::copy_out_of_boot(image, boot, KERNEL_FILE, &kernel)?;
    image::copy_out_of_boot(image, boot, INITRD_FILE, &initrd)?;
    image::copy_out_of_boot(image, boot, "cmdline.txt", &cmdline)?;
    let append = format!(
        "{} console=ttyAMA0",
        std::fs::read_to_string(&cmdline)?.trim()
    );
    let serial_log = work.join("serial.log");
    let _ = std::fs::remove_file(&serial_log);
    let t0 = Instant::now();
    let mut child = Command::new(qemu)
        .args(["-M", "virt", "-cpu", "cortex-a72", "-accel", "tcg"])
        .args(["-m", "1024", "-smp", "2"])
        .args([
            "-display",
            "none",
            "-nic",
            "none",
            "-no-reboot",
            "-monitor",
            "none",
        ])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", &append])
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=none,id=sd,snapshot=on",
            image.display()
        ))
        .args(["-device", "virtio-blk-pci,drive=sd"])
        .arg("-serial")
        .arg(format!("file:{}", serial_log.display()))
        .stdin(Stdio::null())
        .spawn()
        .context("starting qemu-system-aarch64")?;
    let read = || {
        std::fs::read(&serial_log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let mut timed_out = false;
    let mut first_start_s = None;
    loop {
        let serial = read();
        if first_start_s.is_none() && serial.contains(START_LINE) {
            first_start_s = Some(t0.elapsed().as_secs_f64());
        }
        if done(&serial) || child.try_wait()?.is_some() {
            break;
        }
        if t0.elapsed() > limit {
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(VirtBoot {
        serial: read(),
        elapsed: t0.elapsed(),
        timed_out,
        first_start_s,
    })
}

/// The image's boot chain as the serial log tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootChain {
    /// The initramfs found the root by label and switched to it (the device it used).
    pub root_device: Option<String>,
    /// The root file system's rcS ran (`fas-init: <board> root file system up`).
    pub rootfs_up: bool,
    /// How many times the init started fas-edge.
    pub starts: usize,
    /// fas-edge's exit statuses, as the init saw them.
    pub exits: Vec<i32>,
    /// fas-edge's own `fas-edge: error: …` lines.
    pub edge_errors: Vec<String>,
    /// fas-edge said `fas-edge: ready` (model, detector, relay and audit log are up; the
    /// camera may still be missing, see `camera_waiting`).
    pub ready: bool,
    /// fas-edge found no camera device and waits for one with the door locked.
    pub camera_waiting: bool,
    /// fas-edge's `fas-edge: model …` lines (the bundle verified and loaded).
    pub models: Vec<String>,
    /// fas-edge's `fas-edge: access mode …` lines: its `[access]` gate is up (the
    /// face-embedding network loaded, in the modes that compare faces, and the enrolment
    /// store opened).
    pub access: Vec<String>,
    /// The relay line as the init read it back after each stop (`gpiochip0 line 0: out 0
    /// (locked)`).
    pub relay: Vec<String>,
    /// Decisions that opened the door (`decision: grant`).
    pub grants: usize,
    /// Modules the initramfs could not load.
    pub insmod_failures: Vec<String>,
}

impl BootChain {
    pub fn parse(serial: &str) -> BootChain {
        let mut c = BootChain::default();
        for line in serial.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(rest) = line.strip_prefix("fas-initramfs: root ") {
                c.root_device = rest.split_whitespace().next().map(str::to_string);
            } else if let Some(rest) = line.strip_prefix("fas-initramfs: insmod ") {
                c.insmod_failures
                    .push(rest.trim_end_matches(" failed").to_string());
            } else if line.starts_with("fas-init: ") && line.contains(" root file system up") {
                c.rootfs_up = true;
            } else if line.starts_with(START_LINE) {
                c.starts += 1;
            } else if let Some(rest) = line.strip_prefix(EXIT_LINE) {
                let code = rest.split(';').next().unwrap_or("").trim();
                c.exits.push(code.parse().unwrap_or(-1));
            } else if line.starts_with("fas-edge: error: ") {
                c.edge_errors.push(line.to_string());
            } else if let Some(rest) = line.strip_prefix(RELAY_LINE) {
                c.relay.push(rest.to_string());
            } else if line.starts_with("fas-edge: model ") {
                c.models.push(line.to_string());
            } else if line.starts_with("fas-edge: access mode ") {
                c.access.push(line.to_string());
            } else if line.starts_with("fas-edge: ready") {
                c.ready = true;
            } else if line.starts_with("fas-edge: camera ")
                && line.contains("is not present; the door stays locked")
            {
                c.camera_waiting = true;
            } else if line.starts_with("decision: grant") {
                c.grants += 1;
            }
        }
        c
    }

    /// The image booted its own chain and started fas-edge, which never opened the door
    /// nor left the relay unlocked. Returns what is missing.
    pub fn boot_failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if self.root_device.is_none() {
            f.push("the initramfs never switched to the root file system".to_string());
        }
        if !self.rootfs_up {
            f.push("the root file system's init (rcS) never ran".into());
        }
        if self.starts == 0 {
            f.push("the init never started fas-edge".into());
        }
        if self.grants > 0 {
            f.push(format!("the door opened {} time(s)", self.grants));
        }
        if let Some(open) = self.relay.iter().find(|r| r.contains("UNLOCKED")) {
            f.push(format!("the relay was left unlocked: {open}"));
        }
        if !self.insmod_failures.is_empty() {
            f.push(format!(
                "modules failed to load: {:?}",
                self.insmod_failures
            ));
        }
        f
    }

    /// A failure unless fas-edge said its access gate came up in `mode` (the first word
    /// after `access mode`, e.g. `credential+face`: the face-embedding network loaded).
    pub fn access_missing(&self, mode: &str) -> Option<String> {
        let up = self.access.iter().any(|l| {
            l["fas-edge: access mode ".len()..]
                .split_whitespace()
                .next()
                == Some(mode)
        });
        (!up).then(|| {
            let mut errors: Vec<&str> = Vec::new();
            for e in &self.edge_errors {
                if !errors.contains(&e.as_str()) {
                    errors.push(e);
                }
            }
            format!(
                "fas-edge never said `fas-edge: access mode {mode} …` (its [access] gate with the face-embedding network did not come up): {:?}; errors (each once) {errors:?}",
                self.access
            )
        })
    }

    /// [`BootChain::boot_failures`], and fas-edge was stopped fail-closed by a start-up
    /// error and restarted. Returns what is missing.
    pub fn failures(&self) -> Vec<String> {
        let mut f = self.boot_failures();
        if self.starts < 2 {
            f.push(format!(
                "the init started fas-edge {} time(s), want a start and a restart",
                self.starts
            ));
        }
        if self.exits.is_empty() {
            f.push("fas-edge never stopped (with no camera it must fail closed)".into());
        } else if self.exits.contains(&0) {
            f.push(format!(
                "fas-edge exited with status 0 ({:?}) with no camera",
                self.exits
            ));
        }
        if self.edge_errors.is_empty() {
            f.push("fas-edge printed no `fas-edge: error:` line saying why it stopped".into());
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_boot_chain_from_a_serial_log() {
        let log = "[    0.000000] Booting Linux\n\
            fas-initramfs: loading 3 modules\n\
            fas-initramfs: root /dev/vda2 (LABEL=fas-root); switching to it\r\n\
            fas-init: rpi4 root file system up (6.1.0-57-arm64)\n\
            fas-init: starting fas-edge (run 1)\n\
            fas-edge: error: /etc/fas/model.fasb: cannot read\n\
            fas-init: fas-edge exited with status 1; restarting in 2 s\n\
            fas-init: relay gpiochip0 line 17: in 0 (released (relay de-energised))\n\
            fas-init: starting fas-edge (run 2)\n";
        let c = BootChain::parse(log);
        assert_eq!(c.root_device.as_deref(), Some("/dev/vda2"));
        assert!(c.rootfs_up);
        assert_eq!((c.starts, c.exits.clone(), c.grants), (2, vec![1], 0));
        assert_eq!(c.edge_errors.len(), 1);
        assert_eq!(
            c.relay,
            ["gpiochip0 line 17: in 0 (released (relay de-energised))"]
        );
        assert!(c.failures().is_empty(), "{:?}", c.failures());

        // Each missing link is named.
        let half = BootChain::parse(&log[..log.find("fas-init: starting").unwrap()]);
        let f = half.failures().join("; ");
        assert!(
            f.contains("started fas-edge 0 time(s)") && f.contains("never stopped"),
            "{f}"
        );
        let opened = BootChain::parse(&format!("{log}decision: grant (live)\n"));
        assert!(opened.failures().join(";").contains("door opened 1"));
        let clean = BootChain::parse(&log.replace("status 1", "status 0"));
        assert!(clean.failures().join(";").contains("status 0"));
        let open = BootChain::parse(
            &log.replace("in 0 (released (relay de-energised))", "out 1 (UNLOCKED)"),
        );
        assert!(open.failures().join(";").contains("left unlocked"));
        let bad = BootChain::parse(&format!("fas-initramfs: insmod vc4.ko failed\n{log}"));
        assert_eq!(bad.insmod_failures, ["vc4.ko"]);
        assert!(!BootChain::parse("").failures().is_empty());

        let gate = BootChain::parse(
            "fas-edge: access mode credential+face — 0 enrolled, face threshold 0.500\n\
             fas-edge: ready — camera /dev/video0\n",
        );
        assert!(gate.ready);
        assert_eq!(gate.access_missing("credential+face"), None);
        assert!(gate
            .access_missing("face")
            .unwrap()
            .contains("access mode face"));
        assert!(BootChain::parse(log)
            .access_missing("credential+face")
            .unwrap()
            .contains("model.fasb"));
    }
}
