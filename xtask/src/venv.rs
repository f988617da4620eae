//! The project-local virtualenv (`.venv/`, git-ignored) holding the PyPI `torch` wheel of
//! the exact version the locked `tch`/`torch-sys` crate expects.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub fn python(root: &Path) -> PathBuf {
    root.join(".venv/bin/python")
}

/// Creates the venv if needed (without torch). Returns its python.
///
/// A new `.venv` is a link to a venv shared by every clone on this machine, one per
/// (Python, torch, test packages) — `~/.cache/fas/venv/<key>`, outside the clone like the
/// build cache — so a fresh clone does not download and install torch again. With
/// `FAS_VENV_LOCAL=1`, or without a home directory, the venv is made inside the clone.
pub fn bootstrap_python(root: &Path) -> Result<PathBuf> {
    let py = python(root);
    if py.exists() {
        return Ok(py);
    }
    let venv = root.join(".venv");
    // A link whose shared venv was deleted: make it again.
    if std::fs::symlink_metadata(&venv).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(&venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    let shared = match shared_venv(root)? {
        Some(dir) if !dir.join("bin/python").exists() => create_venv(&dir).map(|()| Some(dir))?,
        other => other,
    };
    match shared {
        Some(dir) => {
            println!(
                "xtask: .venv → {} (shared by this machine's clones)",
                dir.display()
            );
            std::os::unix::fs::symlink(&dir, &venv)
                .with_context(|| format!("linking {} to {}", venv.display(), dir.display()))?;
        }
        None => create_venv(&venv)?,
    }
    Ok(py)
}

fn create_venv(dir: &Path) -> Result<()> {
    println!("xtask: creating venv {}", dir.display());
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(dir)
        .status()
        .context("could not run python3; install Debian's python3 and python3-venv")?;
    if !status.success() {
        bail!(
            "`python3 -m venv {}` failed; install Debian's python3-venv and run again",
            dir.display()
        );
    }
    Ok(())
}

/// The shared venv for this clone's pins, or `None` when the venv stays in the clone.
fn shared_venv(root: &Path) -> Result<Option<PathBuf>> {
    let local = std::env::var_os("FAS_VENV_LOCAL").is_some_and(|v| v == "1");
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty() && !local) else {
        return Ok(None);
    };
    let out = Command::new("python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .context("could not run python3; install Debian's python3 and python3-venv")?;
    let python = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let key = venv_key(&python, &expected_torch_version(root)?, TEST_PACKAGES);
    Ok(Some(PathBuf::from(home).join(".cache/fas/venv").join(key)))
}

/// `py3.11-torch2.13.0-libosdp3.2.9`: every pin that decides the venv's contents.
fn venv_key(python: &str, torch: &str, packages: &[&str]) -> String {
    let mut key = format!("py{python}-torch{torch}");
    for p in packages {
        key.push('-');
        key.push_str(&p.replace("==", ""));
    }
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `torch-sys` version pinned in Cargo.lock.
pub fn locked_torch_sys(root: &Path) -> Result<String> {
    let lock = root.join("Cargo.lock");
    let text =
        std::fs::read_to_string(&lock).with_context(|| format!("reading {}", lock.display()))?;
    parse_lock_version(&text, "torch-sys")
        .with_context(|| format!("{}: no [[package]] named torch-sys", lock.display()))
}

fn parse_lock_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let next = lines.next()?;
            let v = next
                .trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"')?;
            return Some(v.to_string());
        }
    }
    None
}

/// The `TORCH_VERSION` constant of the locked torch-sys's build script: the PyTorch
/// version that tch's bindings were generated for.
pub fn expected_torch_version(root: &Path) -> Result<String> {
    let ver = locked_torch_sys(root)?;
    let build_rs = match find_torch_sys_build_rs(&ver) {
        Some(p) => p,
        None => {
            println!("xtask: fetching crates to read torch-sys {ver}'s build script");
            let status = Command::new(crate::env::cargo_bin())
                .args(["fetch", "--locked"])
                .current_dir(root)
                .status()
                .context("could not run cargo fetch")?;
            if !status.success() {
                bail!("`cargo fetch --locked` failed; check access to crates.io");
            }
            find_torch_sys_build_rs(&ver)
                .with_context(|| format!("torch-sys-{ver}/build.rs not in the cargo registry"))?
        }
    };
    let text = std::fs::read_to_string(&build_rs)?;
    parse_torch_version(&text)
        .with_context(|| format!("{}: no `const TORCH_VERSION`", build_rs.display()))
}

fn parse_torch_version(build_rs: &str) -> Option<String> {
    build_rs.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("const TORCH_VERSION: &str = \"")?;
        Some(rest.strip_suffix("\";")?.to_string())
    })
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        })
}

fn find_torch_sys_build_rs(ver: &str) -> Option<PathBuf> {
    let src = cargo_home().join("registry/src");
    std::fs::read_dir(src).ok()?.flatten().find_map(|reg| {
        let p = reg.path().join(format!("torch-sys-{ver}/build.rs"));
        p.exists().then_some(p)
    })
}

fn installed_torch(py: &Path) -> Option<String> {
    let out = Command::new(py)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('torch'))",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Installs `torch==<expected>` into the venv unless that exact version is there.
/// Returns whether anything was installed.
pub fn ensure_torch(root: &Path) -> Result<bool> {
    let want = expected_torch_version(root)?;
    let py = bootstrap_python(root)?;
    if let Some(have) = installed_torch(&py) {
        if have.split('+').next() == Some(want.as_str()) {
            println!("xtask: torch {have} already in .venv (tch expects {want})");
            link_torch(root)?;
            return Ok(false);
        }
        println!("xtask: .venv has torch {have}, tch expects {want}: reinstalling");
    }
    println!("xtask: installing torch=={want} from PyPI into .venv (several GB the first time)");
    let status = Command::new(&py)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
        .arg(format!("torch=={want}"))
        .status()
        .context("could not run pip in .venv")?;
    if !status.success() {
        bail!(
            "pip could not install torch=={want} (PyPI package `torch`); check access to \
             PyPI and free disk space (~5 GB), then run `cargo xtask setup` again"
        );
    }
    link_torch(root)?;
    Ok(true)
}

/// `.venv/torch` → the wheel's package directory (`lib/python3.X/site-packages/torch`): the
/// fixed path that `.cargo/config.toml` gives torch-sys as `LIBTORCH`, whatever the
/// Python version.
fn link_torch(root: &Path) -> Result<()> {
    let lib = torch_lib_dir(root)?;
    let pkg = lib
        .parent()
        .context("torch's lib directory has no parent")?;
    let venv = root.join(".venv");
    let target = pkg.strip_prefix(&venv).unwrap_or(pkg);
    let link = venv.join("torch");
    if std::fs::read_link(&link).is_ok_and(|t| t == target) {
        return Ok(());
    }
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(target, &link)
        .with_context(|| format!("{}: cannot link it to {}", link.display(), target.display()))
}

/// PyPI packages the tests run besides torch, pinned: `libosdp` is the OSDP card reader
/// (peripheral device) that fas-edge's OSDP control panel is tested against
/// (edge/tests/access/osdp.rs).
pub const TEST_PACKAGES: &[&str] = &["libosdp==3.2.9"];

/// Installs [`TEST_PACKAGES`] into the venv unless those exact versions are there.
/// Returns whether anything was installed.
pub fn ensure_test_packages(root: &Path) -> Result<bool> {
    let py = bootstrap_python(root)?;
    let missing: Vec<&str> = TEST_PACKAGES
        .iter()
        .copied()
        .filter(|spec| {
            let (name, want) = spec.split_once("==").unwrap_or((spec, ""));
            installed_version(&py, name).as_deref() != Some(want)
        })
        .collect();
    if missing.is_empty() {
        return Ok(false);
    }
    println!(
        "xtask: installing {} from PyPI into .venv",
        missing.join(", ")
    );
    let status = Command::new(&py)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
        .args(&missing)
        .status()
        .context("could not run pip in .venv")?;
    if !status.success() {
        bail!(
            "pip could not install {} into .venv; check access to PyPI, then run `cargo xtask setup` again",
            missing.join(", ")
        );
    }
    Ok(true)
}

fn installed_version(py: &Path, package: &str) -> Option<String> {
    let out = Command::new(py)
        .args([
            "-c",
            "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))",
        ])
        .arg(package)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `torch/lib` inside the venv (libtorch's shared libraries).
pub fn torch_lib_dir(root: &Path) -> Result<PathBuf> {
    let lib = root.join(".venv/lib");
    for entry in std::fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))? {
        let p = entry?.path().join("site-packages/torch/lib");
        if p.is_dir() {
            return Ok(p);
        }
    }
    bail!("torch is not installed in .venv: run `cargo xtask setup`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_of_named_package_from_lockfile() {
        let lock = "[[package]]\nname = \"tch\"\nversion = \"0.26.0\"\n\n\
                    [[package]]\nname = \"torch-sys\"\nversion = \"0.26.0\"\nsource = \"x\"\n";
        assert_eq!(
            parse_lock_version(lock, "torch-sys").as_deref(),
            Some("0.26.0")
        );
        assert_eq!(parse_lock_version(lock, "torch"), None);
    }

    #[test]
    fn reads_torch_version_constant() {
        let src = "use x;\nconst TORCH_VERSION: &str = \"2.13.0\";\nfn main(){}";
        assert_eq!(parse_torch_version(src).as_deref(), Some("2.13.0"));
        assert_eq!(parse_torch_version("fn main(){}"), None);
    }

    #[test]
    fn the_shared_venv_is_keyed_by_every_pin() {
        let k = venv_key("3.11", "2.13.0", &["libosdp==3.2.9"]);
        assert_eq!(k, "py3.11-torch2.13.0-libosdp3.2.9");
        assert_ne!(k, venv_key("3.12", "2.13.0", &["libosdp==3.2.9"]));
        assert_ne!(k, venv_key("3.11", "2.13.1", &["libosdp==3.2.9"]));
        assert_ne!(k, venv_key("3.11", "2.13.0", &["libosdp==3.3.0"]));
        assert_eq!(
            venv_key("3.11", "2.13.0", &["a/b==1"]),
            "py3.11-torch2.13.0-a_b1"
        );
    }

    #[test]
    fn workspace_lock_pins_a_torch_version() {
        let root = crate::env::workspace_root().unwrap();
        let v = locked_torch_sys(&root).unwrap();
        assert!(v.split('.').count() == 3, "{v}");
    }
}
