//! The device's own signing key: `device.key` (mode 0600) and `device.pub` beside it, in
//! the `fas_infer::bundle` key-file format. `fas-edge calibrate` makes it the first time it
//! signs a calibration; the door only reads it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fas_infer::bundle::secret::{key_paths, keygen, KeygenError};
use fas_infer::bundle::SecretKey;

/// The key at `path`, made (with its `.pub`) if there is none.
pub fn load_or_create(path: &Path) -> Result<SecretKey> {
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("creating the device key's directory {}", dir.display())
            })?;
        }
        match keygen(&base(path)) {
            Ok(files) => eprintln!(
                "fas-edge: made the device key {} (key id {})",
                files.secret.display(),
                files.key_id
            ),
            // A public half left alone, or a race with another process: load what is there.
            Err(KeygenError::Exists { .. }) if path.exists() => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "making the device key {} — set device.key to a writable place",
                        path.display()
                    )
                })
            }
        }
    }
    load(path)
}

/// The existing key at `path`.
pub fn load(path: &Path) -> Result<SecretKey> {
    SecretKey::load(path).with_context(|| format!("device key {}", path.display()))
}

/// `DIR/device.key` → `DIR/device` (what `keygen` takes).
fn base(path: &Path) -> PathBuf {
    let (secret, _) = key_paths(path);
    secret.with_extension("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_loaded() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/device.key");
        let a = load_or_create(&p).unwrap();
        assert!(d.path().join("sub/device.pub").exists());
        let b = load_or_create(&p).unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(load(&p).unwrap().id(), a.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
