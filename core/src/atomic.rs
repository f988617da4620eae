//! Crash-safe file replacement shared by every fas file format.
//!
//! [`write_atomic`] writes to a temporary file in the destination's directory, fsyncs it,
//! renames it over the destination and fsyncs the directory, so a reader sees either the
//! old file or the complete new one — never a torn write — even across a power cut.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(parent_dir(path).join(format!(
        ".{}.tmp.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        n
    )))
}

/// Atomically replace `path` with `bytes` (temp file, fsync, rename, fsync directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], for a file only its owner may read or write (mode 0600 on Unix,
/// set on the temporary file before any byte is written): device state, calibration.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_inner(path, 0o600, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], streaming the content through `fill`.
/// On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic_with<F>(path: &Path, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut io::BufWriter<&mut File>) -> io::Result<()>,
{
    write_atomic_inner(path, 0o666, fill)
}

fn write_atomic_inner<F>(path: &Path, mode: u32, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut io::BufWriter<&mut File>) -> io::Result<()>,
{
    let tmp = temp_path(path)?;
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp)?;
        {
            let mut w = io::BufWriter::new(&mut file);
            fill(&mut w)?;
            w.flush()?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(parent_dir(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Like [`write_atomic`], for a writer that insists on a path of its own (e.g. libtorch's
/// safetensors writer): `fill` writes the complete file at the temporary path it is given;
/// then the file is fsynced, renamed over `path` and the directory fsynced. On any error
/// the temporary file is removed and `path` is untouched.
pub fn write_atomic_via<E, F>(path: &Path, fill: F) -> Result<(), E>
where
    E: From<io::Error>,
    F: FnOnce(&Path) -> Result<(), E>,
{
    let tmp = temp_path(path)?;
    let result = fill(&tmp).and_then(|()| {
        (|| {
            File::open(&tmp)?.sync_all()?;
            fs::rename(&tmp, path)?;
            sync_dir(parent_dir(path))
        })()
        .map_err(E::from)
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Replaces `path` with `bytes` so that a reader sees the old or the new file, never a
/// torn one (temp file + rename), without fsync: for small files rewritten every few
/// seconds whose loss in a power cut is harmless (a status file), where an fsync each time
/// would stall the writer on slow storage. Durable files use [`write_atomic`].
pub fn replace_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path)?;
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// fsync a directory so a rename inside it is durable (no-op where unsupported).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// A fresh, empty scratch directory for unit tests.
#[cfg(test)]
pub(crate) fn tempdir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("fas-test-{tag}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp() {
        let d = tempdir("replace");
        let p = d.join("f.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn private_write_is_owner_only_from_the_first_byte() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempdir("private");
        let p = d.join("state.json");
        write_atomic(&p, b"public").unwrap();
        write_atomic_private(&p, b"secret").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"secret");
        let mode = fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn write_via_a_path_replaces_and_cleans_up_on_error() {
        let d = tempdir("via");
        let p = d.join("t.bin");
        write_atomic_via::<io::Error, _>(&p, |tmp| {
            assert_ne!(tmp, p.as_path());
            assert_eq!(tmp.parent(), p.parent());
            fs::write(tmp, b"first")
        })
        .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"first");
        let err = write_atomic_via::<io::Error, _>(&p, |tmp| {
            fs::write(tmp, b"half")?;
            Err(io::Error::other("writer failed"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"first");
        // A writer that reports success without writing: the rename has nothing to move.
        assert!(write_atomic_via::<io::Error, _>(&p, |_| Ok(())).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn replace_leaves_the_new_content_and_no_temp() {
        let d = tempdir("replace-nosync");
        let p = d.join("status.json");
        replace_atomic(&p, b"one").unwrap();
        replace_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        assert!(replace_atomic(&d.join("missing/status.json"), b"x").is_err());
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn failed_fill_keeps_old_file() {
        let d = tempdir("fail");
        let p = d.join("f.txt");
        write_atomic(&p, b"old").unwrap();
        let err = write_atomic_with(&p, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(d).unwrap();
    }
}
