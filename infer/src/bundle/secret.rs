//! Signing keys: generating a key pair (`NAME.key` + `NAME.pub`), loading a `.key` file
//! and signing. The file formats are documented in [`crate::bundle`]. Publishers sign
//! bundles with them (`fas-quantize keygen`); a door signs its own calibration with its
//! device key.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};

use super::keys::{key_id, parse_key_text, read_key_file, KeyError, PublicKey, PUBLIC_KEY_EXT};
use super::signature::ManifestSignature;

/// First line of a `.key` file.
pub const SECRET_KEY_HEADER: &str = "fas-bundle-secret-key ed25519 v1";
/// Extension of secret-key files.
pub const SECRET_KEY_EXT: &str = "key";

/// Why `keygen` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("{}: already exists — keygen never overwrites a key; choose another name or move the old key pair away first", path.display())]
    Exists { path: PathBuf },
    #[error("{}: cannot write it — check that the directory is writable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the operating system's random number generator ({0}) — key generation needs it; retry on a system with /dev/urandom or getrandom(2)")]
    Rng(String),
}

/// An ed25519 signing key. `Debug` shows only its key id.
#[derive(Clone)]
pub struct SecretKey {
    key: SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<SecretKey, KeygenError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeygenError::Rng(e.to_string()))?;
        Ok(SecretKey::from_seed(seed))
    }

    /// The key of a 32-byte ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Read a `.key` file. On Unix it must not be readable by group or others.
    pub fn load(path: &Path) -> Result<SecretKey, KeyError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|source| KeyError::Io {
                    path: path.to_path_buf(),
                    source,
                })?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(KeyError::Format {
                    path: path.to_path_buf(),
                    problem: format!(
                        "is readable or writable by group or others (mode {:04o})",
                        mode & 0o7777
                    ),
                    fix: format!(
                        "a signing key must stay private: chmod 600 {}",
                        path.display()
                    ),
                });
            }
        }
        let text = read_key_file(path)?;
        let seed = parse_key_text(&text, SECRET_KEY_HEADER, "secret", path)?;
        Ok(SecretKey::from_seed(seed))
    }

    /// The `.key` file text.
    pub fn to_text(&self) -> String {
        format!(
            "{SECRET_KEY_HEADER}\n{}\n",
            hex::encode(self.key.to_bytes())
        )
    }

    pub fn public(&self) -> PublicKey {
        PublicKey::from_bytes(&self.key.verifying_key().to_bytes())
            .expect("the public key of a signing key is never weak")
    }

    pub fn id(&self) -> String {
        key_id(&self.key.verifying_key().to_bytes())
    }

    /// `manifest.sig` for these exact `manifest.json` bytes.
    pub fn sign_manifest(&self, manifest_json: &[u8]) -> ManifestSignature {
        ManifestSignature::new(&self.id(), &self.sign(manifest_json))
    }

    /// The raw ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// What `keygen` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairFiles {
    pub secret: PathBuf,
    pub public: PathBuf,
    pub key_id: String,
}

/// `out` = `DIR/NAME` → `DIR/NAME.key` and `DIR/NAME.pub` (a trailing `.key`/`.pub` on
/// `out` is dropped).
pub fn key_paths(out: &Path) -> (PathBuf, PathBuf) {
    let base = match out.extension() {
        Some(e) if e == SECRET_KEY_EXT || e == PUBLIC_KEY_EXT => out.with_extension(""),
        _ => out.to_path_buf(),
    };
    let with = |ext: &str| {
        let mut s = base.clone().into_os_string();
        s.push(".");
        s.push(ext);
        PathBuf::from(s)
    };
    (with(SECRET_KEY_EXT), with(PUBLIC_KEY_EXT))
}

/// Generate a key pair at `out` (see [`key_paths`]), creating `DIR` if needed. Refuses to
/// overwrite either file; on any error nothing is left behind.
pub fn keygen(out: &Path) -> Result<KeyPairFiles, KeygenError> {
    let (secret_path, public_path) = key_paths(out);
    for p in [&secret_path, &public_path] {
        if p.symlink_metadata().is_ok() {
            return Err(KeygenError::Exists { path: p.clone() });
        }
    }
    if let Some(dir) = secret_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| KeygenError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let key = SecretKey::generate()?;
    write_new_file(&secret_path, key.to_text().as_bytes(), 0o600)?;
    if let Err(e) = write_new_file(&public_path, key.public().to_text().as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&secret_path);
        return Err(e);
    }
    Ok(KeyPairFiles {
        secret: secret_path,
        public: public_path,
        key_id: key.id(),
    })
}

/// Create `path` with `bytes` and `mode`, atomically and never over an existing file: the
/// content goes to a private temporary file that is fsynced and then hard-linked to `path`
/// (which fails if `path` exists), and the directory is fsynced.
fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeygenError> {
    let io = |source| KeygenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match result {
        Ok(()) => fas_core::atomic::sync_dir(dir).map_err(io),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(KeygenError::Exists {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory, removed when the returned guard drops.
    fn tempdir(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("fas-qkeys-{tag}-"))
            .tempdir()
            .unwrap()
    }

    #[test]
    fn key_paths_from_name() {
        let (k, p) = key_paths(Path::new("keys/release.v2"));
        assert_eq!(
            (k, p),
            ("keys/release.v2.key".into(), "keys/release.v2.pub".into())
        );
        let (k, p) = key_paths(Path::new("keys/release.key"));
        assert_eq!(
            (k, p),
            ("keys/release.key".into(), "keys/release.pub".into())
        );
    }

    #[test]
    fn keygen_writes_private_key_and_refuses_to_overwrite() {
        let d_dir = tempdir("gen");
        let d = d_dir.path();
        let out = d.join("sub/release");
        let files = keygen(&out).unwrap();
        assert_eq!(files.secret, d.join("sub/release.key"));
        let secret = SecretKey::load(&files.secret).unwrap();
        let public = PublicKey::load(&files.public).unwrap();
        assert_eq!(secret.public(), public);
        assert_eq!(files.key_id, public.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.secret)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = std::fs::read(&files.secret).unwrap();
        let e = keygen(&out).unwrap_err();
        assert!(matches!(e, KeygenError::Exists { .. }), "{e}");
        assert!(e.to_string().contains("release.key"), "{e}");
        assert_eq!(std::fs::read(&files.secret).unwrap(), before);
        // Only the .pub exists: still refused, and no .key is created.
        std::fs::remove_file(&files.secret).unwrap();
        assert!(matches!(keygen(&out), Err(KeygenError::Exists { .. })));
        assert!(!files.secret.exists());
        // Two keys differ (the RNG is used).
        let other = keygen(&d.join("other")).unwrap();
        assert_ne!(other.key_id, files.key_id);
        let leftovers: Vec<_> = std::fs::read_dir(d.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[cfg(unix)]
    #[test]
    fn load_refuses_a_world_readable_key() {
        use std::os::unix::fs::PermissionsExt;
        let d_dir = tempdir("mode");
        let d = d_dir.path();
        let p = d.join("k.key");
        std::fs::write(&p, SecretKey::from_seed([1; 32]).to_text()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = SecretKey::load(&p).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            SecretKey::load(&p).unwrap().id(),
            SecretKey::from_seed([1; 32]).id()
        );
        // A public key where a secret one is expected.
        std::fs::write(&p, SecretKey::from_seed([1; 32]).public().to_text()).unwrap();
        let e = SecretKey::load(&p).unwrap_err();
        assert!(e.to_string().contains("first line"), "{e}");
    }

    #[test]
    fn signature_verifies_with_the_public_key() {
        let k = SecretKey::from_seed([9; 32]);
        let sig = k.sign_manifest(b"{\"a\":1}");
        assert_eq!(sig.key_id, k.id());
        let raw = sig.signature_bytes().unwrap();
        assert!(k.public().verify(b"{\"a\":1}", &raw));
        assert!(!k.public().verify(b"{\"a\":2}", &raw));
        // RFC 8032 test 1 secret key → its public key.
        let rfc = SecretKey::from_seed(
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        assert_eq!(
            hex::encode(rfc.public().to_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }
}
