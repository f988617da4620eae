//! Host programs the image builders run (`sfdisk`, `mkfs.vfat`, `mcopy`, `mkfs.ext4`, …),
//! found on `PATH` or in the `sbin` directories a non-root `PATH` often lacks. A missing
//! one is an error naming the Debian package that provides it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A host program and the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub program: &'static str,
    pub package: &'static str,
}

pub const SFDISK: Tool = Tool {
    program: "sfdisk",
    package: "fdisk",
};
pub const MKFS_VFAT: Tool = Tool {
    program: "mkfs.vfat",
    package: "dosfstools",
};
pub const MCOPY: Tool = Tool {
    program: "mcopy",
    package: "mtools",
};
pub const MKFS_EXT4: Tool = Tool {
    program: "mkfs.ext4",
    package: "e2fsprogs",
};
pub const DPKG_DEB: Tool = Tool {
    program: "dpkg-deb",
    package: "dpkg",
};
pub const MODPROBE: Tool = Tool {
    program: "modprobe",
    package: "kmod",
};
pub const DEPMOD: Tool = Tool {
    program: "depmod",
    package: "kmod",
};
pub const APT_GET: Tool = Tool {
    program: "apt-get",
    package: "apt",
};
pub const TAR: Tool = Tool {
    program: "tar",
    package: "tar",
};
pub const QEMU_AARCH64: Tool = Tool {
    program: "qemu-system-aarch64",
    package: "qemu-system-arm",
};

pub const FDTPUT: Tool = Tool {
    program: "fdtput",
    package: "device-tree-compiler",
};

/// What `fas-boards image --board rpi4` runs.
pub const SD_IMAGE: &[Tool] = &[
    SFDISK, MKFS_VFAT, MCOPY, MKFS_EXT4, DPKG_DEB, MODPROBE, DEPMOD, APT_GET,
];

/// What `fas-boards check-raspi4b` runs besides QEMU (the host's when it has `raspi4b`,
/// else bookworm-backports', fetched with `apt-get` and unpacked with `dpkg-deb`).
pub const RASPI4B_CHECK: &[Tool] = &[MCOPY, FDTPUT, APT_GET, DPKG_DEB];

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("`{}` is not installed: install Debian's `{}` (sudo apt-get install {}) or run `cargo xtask setup`", .0.program, .0.package, .0.package)]
    Missing(Tool),
    #[error("could not run {program} — check that it is installed and on PATH")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
}

fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        let d = PathBuf::from(d);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The path of `tool`, or [`ToolError::Missing`].
pub fn find(tool: Tool) -> Result<PathBuf, ToolError> {
    search_dirs()
        .into_iter()
        .map(|d| d.join(tool.program))
        .find(|p| executable(p))
        .ok_or(ToolError::Missing(tool))
}

/// The first missing tool of `tools`, as an error.
pub fn require(tools: &[Tool]) -> Result<(), ToolError> {
    for t in tools {
        find(*t)?;
    }
    Ok(())
}

/// Runs `tool` with `args`; a non-zero exit is [`ToolError::Failed`] with its stderr.
/// Returns stdout.
pub fn run(tool: Tool, args: &[&std::ffi::OsStr]) -> Result<String, ToolError> {
    run_with_input(tool, args, "")
}

/// Like [`run`], with `input` written to the program's stdin (`sfdisk IMAGE < script`).
pub fn run_with_input(
    tool: Tool,
    args: &[&std::ffi::OsStr],
    input: &str,
) -> Result<String, ToolError> {
    use std::io::Write;
    let path = find(tool)?;
    let spawn_err = |source| ToolError::Spawn {
        program: tool.program.to_string(),
        source,
    };
    let mut child = Command::new(&path)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return Err(ToolError::Failed {
            command: format!("{} {}", tool.program, shown.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_debian_package() {
        let ghost = Tool {
            program: "fas-no-such-program-xyz",
            package: "fas-ghost-tools",
        };
        let e = find(ghost).unwrap_err().to_string();
        assert!(
            e.contains("fas-no-such-program-xyz") && e.contains("apt-get install fas-ghost-tools"),
            "{e}"
        );
        // `sh` is everywhere; it is found and runs.
        let sh = Tool {
            program: "sh",
            package: "dash",
        };
        assert!(find(sh).unwrap().is_absolute());
        let out = run(sh, &["-c".as_ref(), "echo hi".as_ref()]).unwrap();
        assert_eq!(out, "hi\n");
        let e = run(sh, &["-c".as_ref(), "echo oops >&2; exit 3".as_ref()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("oops") && e.contains("exit status: 3"), "{e}");
    }
}
