//! Debian packages the tests need. Each requirement is probed by running the tool it
//! provides, so a machine that already has it (from Debian or elsewhere) installs nothing.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// One thing the build or the tests need from the system.
pub struct Requirement {
    /// What it is for, shown to the user.
    pub what: &'static str,
    /// A command that succeeds when the requirement is met.
    pub probe: &'static [&'static str],
    /// Debian packages that provide it.
    pub packages: &'static [&'static str],
}

/// Everything `cargo xtask test` needs. Crates that need more (libtorch: the venv;
/// V4L2 headers, qemu: the edge and boards crates) add their lines here, in one place.
pub const PACKAGES: &[Requirement] = &[
    Requirement {
        what: "C/C++ compiler (torch-sys builds its C++ wrapper)",
        probe: &["g++", "--version"],
        packages: &["g++"],
    },
    Requirement {
        what: "Python 3 with venv (the torch wheel and asset extraction)",
        probe: &["python3", "-c", "import venv, ensurepip, zipfile"],
        packages: &["python3", "python3-venv"],
    },
    Requirement {
        what: "curl (npm and crates.io asset downloads)",
        probe: &["curl", "--version"],
        packages: &["curl", "ca-certificates"],
    },
    Requirement {
        what: "DejaVu Sans font (text in ROC / histogram PNGs, fas-core::plot)",
        probe: &[
            "test",
            "-f",
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        ],
        packages: &["fonts-dejavu-core"],
    },
    Requirement {
        what: "tar with gzip (npm and crate archives)",
        probe: &["sh", "-c", "tar --version && gzip --version"],
        packages: &["tar", "gzip"],
    },
    Requirement {
        what: "ffmpeg and ffprobe (fas-train prepare decodes dataset videos)",
        probe: &["sh", "-c", "ffmpeg -version && ffprobe -version"],
        packages: &["ffmpeg"],
    },
    Requirement {
        what: "libclang (bindgen of the v4l crate: fas-edge's V4L2 camera)",
        probe: &[
            "sh",
            "-c",
            "ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*/libclang.so* 2>/dev/null | grep -q .",
        ],
        packages: &["libclang-dev"],
    },
    Requirement {
        what: "aarch64 cross toolchain (fas-boards cross builds fas-edge for the boards and the QEMU guest)",
        probe: &[
            "sh",
            "-c",
            "aarch64-linux-gnu-gcc --version && test -f /usr/aarch64-linux-gnu/include/linux/videodev2.h && test -f /usr/aarch64-linux-gnu/include/stdio.h",
        ],
        packages: &[
            "gcc-aarch64-linux-gnu",
            "libc6-dev-arm64-cross",
            "linux-libc-dev-arm64-cross",
        ],
    },
    Requirement {
        what: "QEMU aarch64 system emulator (the real-device test of fas-edge)",
        probe: &["qemu-system-aarch64", "--version"],
        packages: &["qemu-system-arm"],
    },
    Requirement {
        what: "partitioning and file system tools (fas-boards image: SD images without root or loop mounts)",
        probe: &[
            "sh",
            "-c",
            "PATH=$PATH:/usr/sbin:/sbin; sfdisk --version && mkfs.vfat --help && mcopy --version && mkfs.ext4 -V && debugfs -V",
        ],
        packages: &["fdisk", "dosfstools", "mtools", "e2fsprogs"],
    },
    Requirement {
        what: "kmod and dpkg-deb (guest kernel module order; .deb packages)",
        probe: &["sh", "-c", "depmod --version && modprobe --version && dpkg-deb --version"],
        packages: &["kmod", "dpkg"],
    },
    Requirement {
        what: "fdtput (fas-boards check-raspi4b patches the Pi 4 device tree for QEMU's raspi4b)",
        probe: &["fdtput", "--version"],
        packages: &["device-tree-compiler"],
    },
];

fn probe_ok(probe: &[&str]) -> bool {
    Command::new(probe[0])
        .args(&probe[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Installs the packages of every unmet requirement. Returns whether anything was installed.
pub fn ensure(reqs: &[Requirement]) -> Result<bool> {
    let missing: Vec<&Requirement> = reqs.iter().filter(|r| !probe_ok(r.probe)).collect();
    if missing.is_empty() {
        println!("xtask: system packages: all present");
        return Ok(false);
    }
    let mut pkgs: Vec<&str> = missing
        .iter()
        .flat_map(|r| r.packages.iter().copied())
        .collect();
    pkgs.sort_unstable();
    pkgs.dedup();
    for r in &missing {
        println!(
            "xtask: missing: {} (Debian: {})",
            r.what,
            r.packages.join(" ")
        );
    }
    if !probe_ok(&["apt-get", "--version"]) {
        bail!(
            "these packages are missing and this is not a Debian/Ubuntu system: {}; \
             install their equivalents and run again",
            pkgs.join(" ")
        );
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let prefix: Vec<&str> = if is_root {
        vec![]
    } else if probe_ok(&["sudo", "-n", "true"]) {
        vec!["sudo", "-n"]
    } else {
        bail!(
            "missing Debian packages and not root: run `sudo apt-get install -y {}` and run again",
            pkgs.join(" ")
        );
    };
    run_apt(&prefix, &["update", "-q"])?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(pkgs.iter().copied());
    run_apt(&prefix, &install)?;
    for r in &missing {
        if !probe_ok(r.probe) {
            bail!(
                "installed {} but `{}` still fails; check the apt output above",
                r.packages.join(" "),
                r.probe.join(" ")
            );
        }
    }
    Ok(true)
}

fn run_apt(prefix: &[&str], args: &[&str]) -> Result<()> {
    let mut argv: Vec<&str> = prefix.to_vec();
    argv.push("apt-get");
    argv.extend_from_slice(args);
    println!("xtask: $ {}", argv.join(" "));
    let status = Command::new(argv[0])
        .args(&argv[1..])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .with_context(|| format!("could not start {}", argv[0]))?;
    if !status.success() {
        bail!(
            "`{}` failed ({status}); check the network to the Debian mirror and run again",
            argv.join(" ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_distinguishes_present_and_absent_tools() {
        assert!(probe_ok(&["sh", "-c", "exit 0"]));
        assert!(!probe_ok(&["sh", "-c", "exit 3"]));
        assert!(!probe_ok(&["/nonexistent/fas-xtask-tool"]));
    }

    #[test]
    fn nothing_missing_installs_nothing() {
        let reqs = [Requirement {
            what: "sh",
            probe: &["sh", "-c", "true"],
            packages: &["dash"],
        }];
        assert!(!ensure(&reqs).unwrap());
    }
}
