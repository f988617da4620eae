//! Debian packages for another architecture, without root and without touching the host's
//! apt configuration: a private `sources.list`, lists directory and archive cache under
//! the fas cache, and `apt-get download` + `dpkg-deb -x`. Debian's package registry is
//! the only host contacted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

/// The fas cache (`$FAS_CACHE`, else `$XDG_CACHE_HOME/fas`, else `~/.cache/fas`).
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("FAS_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("fas");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("fas")
}

/// A private apt for one architecture.
pub struct Apt {
    dir: PathBuf,
    arch: String,
}

/// How old the package lists may get before `update` refreshes them.
const LISTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

impl Apt {
    /// `suite` is a Debian release (`bookworm`), with its updates and security suites;
    /// components include `non-free-firmware` for the Raspberry Pi boot firmware.
    pub fn new(cache: &Path, arch: &str, suite: &str) -> Result<Apt> {
        let sources = format!(
            "deb [arch={arch}] http://deb.debian.org/debian {suite} main non-free-firmware\n\
             deb [arch={arch}] http://deb.debian.org/debian {suite}-updates main\n\
             deb [arch={arch}] http://deb.debian.org/debian-security {suite}-security main\n"
        );
        Apt::with_sources(cache, arch, suite, &sources)
    }

    /// Only `release`'s backports (`bookworm` → `bookworm-backports`, main): newer builds
    /// of a few packages made to install on `release`. Nothing else is in the lists, so a
    /// package's candidate is its backport.
    pub fn backports(cache: &Path, arch: &str, release: &str) -> Result<Apt> {
        let suite = format!("{release}-backports");
        let sources = format!("deb [arch={arch}] http://deb.debian.org/debian {suite} main\n");
        Apt::with_sources(cache, arch, &suite, &sources)
    }

    fn with_sources(cache: &Path, arch: &str, name: &str, sources: &str) -> Result<Apt> {
        let dir = cache.join("debian").join(format!("{name}-{arch}"));
        for d in ["lists/partial", "archives/partial", "debs"] {
            std::fs::create_dir_all(dir.join(d))
                .with_context(|| format!("creating {}", dir.join(d).display()))?;
        }
        let list = dir.join("sources.list");
        if std::fs::read_to_string(&list).ok().as_deref() != Some(sources) {
            fas_core::atomic::write_atomic(&list, sources.as_bytes())?;
            // Lists downloaded for other sources are stale now.
            let _ = std::fs::remove_file(dir.join("lists/.updated"));
        }
        Ok(Apt {
            dir,
            arch: arch.to_string(),
        })
    }

    fn opts(&self) -> Vec<String> {
        let d = self.dir.display();
        vec![
            format!("-oDir::Etc::SourceList={d}/sources.list"),
            "-oDir::Etc::SourceParts=/nonexistent".into(),
            format!("-oDir::State::Lists={d}/lists"),
            format!("-oDir::Cache={d}"),
            "-oDir::Cache::pkgcache=".into(),
            "-oDir::Cache::srcpkgcache=".into(),
            format!("-oDir::Cache::Archives={d}/archives"),
            "-oDir::State::status=/dev/null".into(),
            format!("-oAPT::Architecture={}", self.arch),
            format!("-oAPT::Architectures={}", self.arch),
            "-oAPT::Sandbox::User=root".into(),
            "-oDebug::NoLocking=1".into(),
            "-qq".into(),
        ]
    }

    fn run(&self, tool: &str, args: &[&str], cwd: &Path) -> Result<String> {
        let out = Command::new(tool)
            .args(self.opts())
            .args(args)
            .current_dir(cwd)
            .output()
            .with_context(|| {
                format!("could not run {tool}: install Debian's `apt` (this needs a Debian or Ubuntu host)")
            })?;
        if !out.status.success() {
            bail!(
                "`{tool} {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Downloads the package lists unless fresh ones are cached.
    pub fn update(&self) -> Result<()> {
        let stamp = self.dir.join("lists/.updated");
        let fresh = std::fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < LISTS_MAX_AGE);
        if fresh {
            return Ok(());
        }
        self.run("apt-get", &["update"], &self.dir)
            .context("downloading Debian package lists (deb.debian.org must be reachable)")?;
        std::fs::write(&stamp, b"")?;
        Ok(())
    }

    /// The first `Depends` of a metapackage (`linux-image-arm64` → the current
    /// `linux-image-6.1.0-N-arm64`).
    pub fn resolve_meta(&self, meta: &str) -> Result<String> {
        let show = self.run("apt-cache", &["show", meta], &self.dir)?;
        let dep = show
            .lines()
            .find_map(|l| l.strip_prefix("Depends:"))
            .with_context(|| format!("{meta} has no Depends field"))?;
        let first = dep.split(',').next().unwrap_or("").trim();
        let name = first.split_whitespace().next().unwrap_or("");
        if name.is_empty() {
            bail!("{meta}: empty Depends");
        }
        Ok(name.to_string())
    }

    /// The version `apt-get download` would fetch for `package` (`apt-cache policy`'s
    /// candidate).
    pub fn candidate(&self, package: &str) -> Result<String> {
        self.update()?;
        let policy = self.run("apt-cache", &["policy", package], &self.dir)?;
        policy
            .lines()
            .find_map(|l| l.trim().strip_prefix("Candidate:"))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty() && v != "(none)")
            .with_context(|| {
                format!(
                    "{package} ({}) is not in {}: no candidate version",
                    self.arch,
                    self.dir.join("sources.list").display()
                )
            })
    }

    /// Downloads `package` (cached by file name) and returns the `.deb`.
    pub fn download(&self, package: &str) -> Result<PathBuf> {
        self.fetch(package, &format!("{package}_"))
    }

    /// Downloads `package` at exactly `version` (cached by name and version), so that
    /// packages built from one source come from one build.
    pub fn download_version(&self, package: &str, version: &str) -> Result<PathBuf> {
        // apt names the file `name_version_arch.deb`, the epoch's `:` written `%3a`.
        let prefix = format!("{package}_{}_", version.replace(':', "%3a"));
        self.fetch(&format!("{package}={version}"), &prefix)
    }

    fn fetch(&self, spec: &str, prefix: &str) -> Result<PathBuf> {
        let debs = self.dir.join("debs");
        let find = || -> Result<Option<PathBuf>> {
            for e in std::fs::read_dir(&debs)? {
                let p = e?.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.starts_with(prefix) && name.ends_with(".deb") {
                    return Ok(Some(p));
                }
            }
            Ok(None)
        };
        if let Some(p) = find()? {
            return Ok(p);
        }
        self.update()?;
        self.run("apt-get", &["download", spec], &debs)
            .with_context(|| format!("downloading the Debian package {spec} ({})", self.arch))?;
        find()?.with_context(|| format!("apt-get download {spec} left no {prefix}*.deb"))
    }
}

/// Unpacks a `.deb`'s data into `dest` (`dpkg-deb -x`).
pub fn extract(deb: &Path, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest)?;
    let st = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(dest)
        .status()
        .context("could not run dpkg-deb (Debian's `dpkg`)")?;
    if !st.success() {
        bail!("dpkg-deb -x {} failed ({st})", deb.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backports_lists_only_the_backports_suite_and_drops_stale_lists() {
        let cache = tempfile::tempdir().unwrap();
        let apt = Apt::backports(cache.path(), "amd64", "bookworm").unwrap();
        assert_eq!(
            apt.dir,
            cache.path().join("debian/bookworm-backports-amd64")
        );
        let list = std::fs::read_to_string(apt.dir.join("sources.list")).unwrap();
        assert_eq!(
            list,
            "deb [arch=amd64] http://deb.debian.org/debian bookworm-backports main\n"
        );
        // Fresh lists stay fresh while the sources are the same; other sources make them
        // stale.
        std::fs::write(apt.dir.join("lists/.updated"), b"").unwrap();
        Apt::backports(cache.path(), "amd64", "bookworm").unwrap();
        assert!(apt.dir.join("lists/.updated").exists());
        let release = Apt::new(cache.path(), "arm64", "bookworm").unwrap();
        assert_eq!(release.dir, cache.path().join("debian/bookworm-arm64"));
        let list = std::fs::read_to_string(release.dir.join("sources.list")).unwrap();
        assert_eq!(list.lines().count(), 3, "{list}");
        assert!(
            list.contains(" bookworm main non-free-firmware") && list.contains("bookworm-security")
        );
        std::fs::write(
            apt.dir.join("sources.list"),
            "deb http://deb.debian.org/debian sid main\n",
        )
        .unwrap();
        Apt::backports(cache.path(), "amd64", "bookworm").unwrap();
        assert!(!apt.dir.join("lists/.updated").exists());
    }
}
