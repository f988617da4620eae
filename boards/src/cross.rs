//! Cross builds of fas-edge for a board: the Rust target (installed with rustup when
//! missing), Debian's cross gcc as linker and C compiler (tract's assembly kernels, the v4l
//! crate's bindgen against the cross sysroot's kernel headers).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::profile::Profile;

/// Environment variables for building `target` on an x86_64 Debian host.
pub fn env_for(target: &str) -> Vec<(String, String)> {
    let t = target.replace('-', "_");
    let upper = t.to_uppercase();
    let mut v = Vec::new();
    if target.starts_with("aarch64") {
        let sysroot = "/usr/aarch64-linux-gnu";
        v.push((
            format!("CARGO_TARGET_{upper}_LINKER"),
            "aarch64-linux-gnu-gcc".into(),
        ));
        v.push((format!("CC_{t}"), "aarch64-linux-gnu-gcc".into()));
        v.push((format!("CXX_{t}"), "aarch64-linux-gnu-g++".into()));
        v.push((format!("AR_{t}"), "aarch64-linux-gnu-ar".into()));
        v.push((
            format!("BINDGEN_EXTRA_CLANG_ARGS_{t}"),
            format!("--sysroot={sysroot} -I{sysroot}/include"),
        ));
    }
    v
}

/// The Debian packages a cross build for `target` needs on the host.
pub fn host_packages(target: &str) -> &'static [&'static str] {
    if target.starts_with("aarch64") {
        &[
            "gcc-aarch64-linux-gnu",
            "libc6-dev-arm64-cross",
            "linux-libc-dev-arm64-cross",
            "libclang-dev",
        ]
    } else {
        &["libclang-dev"]
    }
}

/// Installs the Rust target with rustup when it is missing.
pub fn ensure_target(target: &str) -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            if String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == target)
            {
                return Ok(());
            }
            let st = Command::new("rustup")
                .args(["target", "add", target])
                .status()?;
            if !st.success() {
                bail!("`rustup target add {target}` failed");
            }
            Ok(())
        }
        _ => {
            // No rustup: the toolchain may still have the target (distribution packages).
            let sysroot = Command::new("rustc")
                .args(["--print", "sysroot"])
                .output()?;
            let root = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
            if root.join("lib/rustlib").join(target).exists() {
                Ok(())
            } else {
                bail!("the Rust standard library for {target} is missing and there is no rustup to add it")
            }
        }
    }
}

/// Options of one build.
pub struct BuildOptions<'a> {
    pub release: bool,
    /// `-C target-cpu=<profile cpu>` (a separate build of every dependency).
    pub tune: bool,
    pub packages: &'a [&'a str],
    /// Cargo features to enable (`package/feature`).
    pub features: &'a [&'a str],
    /// `CARGO_TARGET_DIR` (default: cargo's own choice).
    pub target_dir: Option<&'a Path>,
}

/// Builds `packages` for the profile's target and returns the directory holding the
/// binaries (`<target-dir>/<triple>/<debug|release>`).
pub fn build(workspace: &Path, profile: &Profile, o: &BuildOptions<'_>) -> Result<PathBuf> {
    ensure_target(&profile.target)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace)
        .args(["build", "--target", &profile.target]);
    if o.release {
        cmd.arg("--release");
    }
    for p in o.packages {
        cmd.args(["-p", p]);
    }
    if !o.features.is_empty() {
        cmd.args(["--features", &o.features.join(",")]);
    }
    cmd.envs(env_for(&profile.target));
    if o.tune {
        let upper = profile.target.replace('-', "_").to_uppercase();
        cmd.env(
            format!("CARGO_TARGET_{upper}_RUSTFLAGS"),
            format!("-C target-cpu={}", profile.cpu),
        );
    }
    if let Some(d) = o.target_dir {
        cmd.env("CARGO_TARGET_DIR", d);
    }
    println!(
        "fas-boards: building {} for {} ({})",
        o.packages.join(", "),
        profile.name,
        profile.target
    );
    let st = cmd
        .status()
        .with_context(|| format!("could not run {cargo}"))?;
    if !st.success() {
        bail!(
            "cross build for {} failed; the host needs Debian's {} (`cargo xtask setup` installs them)",
            profile.target,
            host_packages(&profile.target).join(", ")
        );
    }
    let dir = o
        .target_dir
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| workspace.join("target"));
    Ok(dir
        .join(&profile.target)
        .join(if o.release { "release" } else { "debug" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aarch64_builds_use_the_debian_cross_toolchain() {
        let env = env_for("aarch64-unknown-linux-musl");
        let get = |k: &str| env.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER"),
            Some("aarch64-linux-gnu-gcc")
        );
        assert_eq!(
            get("CC_aarch64_unknown_linux_musl"),
            Some("aarch64-linux-gnu-gcc")
        );
        assert!(get("BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_musl")
            .unwrap()
            .contains("/usr/aarch64-linux-gnu"));
        assert!(env_for("x86_64-unknown-linux-gnu").is_empty());
        assert!(host_packages("aarch64-unknown-linux-gnu").contains(&"gcc-aarch64-linux-gnu"));
    }
}
