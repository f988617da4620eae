//! Public keys that may sign bundles: one `.pub` file, or every `*.pub` in a directory.
//!
//! A `.pub` file is two lines, [`PUBLIC_KEY_HEADER`] and the 32 raw ed25519 public-key
//! bytes in lowercase hex. A key is known by its id: the first 16 hex digits of the
//! sha256 of those 32 bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, VerifyingKey};
use fas_core::bundle::sha256_hex;

/// First line of a `.pub` file.
pub const PUBLIC_KEY_HEADER: &str = "fas-bundle-public-key ed25519 v1";
/// Extension of public-key files in a trusted-keys directory.
pub const PUBLIC_KEY_EXT: &str = "pub";
/// Hex digits in a key id.
pub const KEY_ID_LEN: usize = 16;

/// The key id of 32 raw public-key bytes.
pub fn key_id(raw: &[u8; 32]) -> String {
    let mut id = sha256_hex(raw);
    id.truncate(KEY_ID_LEN);
    id
}

/// Whether `s` has the shape of a key id (16 lowercase hex digits).
pub fn is_key_id(s: &str) -> bool {
    s.len() == KEY_ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {}: cannot read it — check the path and its permissions", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {}: {problem} — {fix}", path.display())]
    Format {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    #[error("trusted-keys directory {}: holds no *.{PUBLIC_KEY_EXT} file — copy the signer's .pub file (from `fas-quantize keygen`) there", dir.display())]
    NoKeys { dir: PathBuf },
}

/// A verified-usable ed25519 public key (not a small-order point) with its key id.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}

impl PublicKey {
    /// From 32 raw bytes; `None` for bytes that are not a usable ed25519 public key.
    pub fn from_bytes(raw: &[u8; 32]) -> Option<PublicKey> {
        let key = VerifyingKey::from_bytes(raw).ok()?;
        if key.is_weak() {
            return None;
        }
        Some(PublicKey {
            key,
            id: key_id(raw),
        })
    }

    /// Parse the text of a `.pub` file; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<PublicKey, KeyError> {
        let raw = parse_key_text(text, PUBLIC_KEY_HEADER, "public", path)?;
        PublicKey::from_bytes(&raw).ok_or_else(|| KeyError::Format {
            path: path.to_path_buf(),
            problem: "is not a usable ed25519 public key".into(),
            fix: "regenerate the key pair with `fas-quantize keygen`".into(),
        })
    }

    /// Read one `.pub` file.
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let text = read_key_file(path)?;
        PublicKey::parse(&text, path)
    }

    /// The `.pub` file text.
    pub fn to_text(&self) -> String {
        format!(
            "{PUBLIC_KEY_HEADER}\n{}\n",
            hex::encode(self.key.as_bytes())
        )
    }

    /// The key id (16 lowercase hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Strict ed25519 verification (no malleable signatures, no weak keys).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.key
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

/// Read a key file as text (at most 4 KiB: key files are two short lines).
pub fn read_key_file(path: &Path) -> Result<String, KeyError> {
    use std::io::Read;
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    file.take(4097).read_to_end(&mut buf).map_err(io)?;
    if buf.len() > 4096 {
        return Err(KeyError::Format {
            path: path.to_path_buf(),
            problem: "is larger than 4 KiB, so not a key file".into(),
            fix: "point at the .pub/.key file written by `fas-quantize keygen`".into(),
        });
    }
    String::from_utf8(buf).map_err(|_| KeyError::Format {
        path: path.to_path_buf(),
        problem: "is not UTF-8 text".into(),
        fix: "point at the .pub/.key file written by `fas-quantize keygen`".into(),
    })
}

/// Parse the shared two-line key format: `header` then 64 lowercase hex digits. `what` is
/// `"public"` or `"secret"`, for messages. Used for `.key` files by fas-quantize too.
pub fn parse_key_text(
    text: &str,
    header: &str,
    what: &str,
    path: &Path,
) -> Result<[u8; 32], KeyError> {
    let err = |problem: String| KeyError::Format {
        path: path.to_path_buf(),
        problem,
        fix: format!("use the {what}-key file written by `fas-quantize keygen`, unchanged"),
    };
    let mut lines = text.lines().map(str::trim_end);
    match lines.next() {
        Some(h) if h == header => {}
        Some(h) => {
            return Err(err(format!(
                "first line is {:?}, expected {header:?}",
                h.chars().take(60).collect::<String>()
            )))
        }
        None => return Err(err("is empty".into())),
    }
    let hex_line = lines
        .next()
        .ok_or_else(|| err("has no key line after the header".into()))?;
    if lines.any(|l| !l.is_empty()) {
        return Err(err("has more than the header and one key line".into()));
    }
    let valid = hex_line.len() == 64
        && hex_line
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !valid {
        return Err(err(format!(
            "second line is not 64 lowercase hex digits ({} characters)",
            hex_line.len()
        )));
    }
    let mut raw = [0u8; 32];
    hex::decode_to_slice(hex_line, &mut raw).expect("checked hex");
    Ok(raw)
}

/// The public keys a device accepts bundles from, and where they were loaded from (for
/// error messages).
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<String, PublicKey>,
    sources: Vec<PathBuf>,
}

impl TrustedKeys {
    /// No keys: every signed bundle is refused with [`super::LoadErrorKind::UnknownKey`].
    pub fn new() -> TrustedKeys {
        TrustedKeys::default()
    }

    /// One key held in memory.
    pub fn single(key: PublicKey) -> TrustedKeys {
        let mut t = TrustedKeys::new();
        t.add(key);
        t
    }

    /// A `.pub` file, or every `*.pub` file directly inside a directory (at least one).
    pub fn load(path: &Path) -> Result<TrustedKeys, KeyError> {
        let mut t = TrustedKeys::new();
        t.load_into(path)?;
        Ok(t)
    }

    /// Add the keys [`TrustedKeys::load`] would read from `path`.
    pub fn load_into(&mut self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(path).map_err(io)? {
                let p = entry.map_err(io)?.path();
                if p.extension().is_some_and(|e| e == PUBLIC_KEY_EXT) && p.is_file() {
                    files.push(p);
                }
            }
            if files.is_empty() {
                return Err(KeyError::NoKeys {
                    dir: path.to_path_buf(),
                });
            }
            files.sort();
            for f in files {
                self.add(PublicKey::load(&f)?);
            }
        } else {
            self.add(PublicKey::load(path)?);
        }
        self.sources.push(path.to_path_buf());
        Ok(())
    }

    pub fn add(&mut self, key: PublicKey) {
        self.keys.entry(key.id.clone()).or_insert(key);
    }

    pub fn get(&self, key_id: &str) -> Option<&PublicKey> {
        self.keys.get(key_id)
    }

    /// Key ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Where the keys came from and which they are, for messages.
    pub fn describe(&self) -> String {
        let places = if self.sources.is_empty() {
            "no key file or directory".to_string()
        } else {
            self.sources
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ids = self.ids().collect::<Vec<_>>();
        if ids.is_empty() {
            format!("{places}; none trusted")
        } else {
            format!("{places}; trusted: {}", ids.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn pair(seed: u8) -> (SigningKey, PublicKey) {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let pk = PublicKey::from_bytes(&sk.verifying_key().to_bytes()).unwrap();
        (sk, pk)
    }

    /// A fresh directory, removed when the returned guard drops.
    fn tempdir(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("fas-keys-{tag}-"))
            .tempdir()
            .unwrap()
    }

    #[test]
    fn key_id_is_sha256_prefix() {
        // sha256 of 32 zero bytes = 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925
        assert_eq!(key_id(&[0u8; 32]), "66687aadf862bd77");
        let (_, pk) = pair(1);
        assert_eq!(pk.id(), &sha256_hex(&pk.to_bytes())[..16]);
        assert!(is_key_id(pk.id()));
        assert!(!is_key_id("66687AADF862BD77"));
    }

    #[test]
    fn text_round_trip_and_verify() {
        let (sk, pk) = pair(3);
        let text = pk.to_text();
        assert!(text.starts_with(PUBLIC_KEY_HEADER));
        let back = PublicKey::parse(&text, Path::new("k.pub")).unwrap();
        assert_eq!(back, pk);
        let sig = sk.sign(b"manifest").to_bytes();
        assert!(pk.verify(b"manifest", &sig));
        assert!(!pk.verify(b"manifesT", &sig));
        let (_, other) = pair(4);
        assert!(!other.verify(b"manifest", &sig));
    }

    #[test]
    fn parse_errors_name_the_file() {
        let (_, pk) = pair(5);
        let good = pk.to_text();
        let hex = good.lines().nth(1).unwrap();
        for (text, needle) in [
            (String::new(), "is empty"),
            (format!("ssh-ed25519\n{hex}\n"), "first line"),
            (format!("{PUBLIC_KEY_HEADER}\n"), "no key line"),
            (
                format!("{PUBLIC_KEY_HEADER}\n{}\n", &hex[..62]),
                "64 lowercase hex",
            ),
            (
                format!("{PUBLIC_KEY_HEADER}\n{}\n", hex.to_uppercase()),
                "64 lowercase hex",
            ),
            (format!("{good}extra\n"), "more than"),
            // The identity point is a small-order (weak) key.
            (
                format!("{PUBLIC_KEY_HEADER}\n01{}\n", "0".repeat(62)),
                "not a usable",
            ),
        ] {
            let e = PublicKey::parse(&text, Path::new("/etc/fas/keys/a.pub")).unwrap_err();
            let s = e.to_string();
            assert!(s.starts_with("key file /etc/fas/keys/a.pub: "), "{s}");
            assert!(s.contains(needle), "{needle}: {s}");
        }
        // CRLF line ends are tolerated.
        let crlf = good.replace('\n', "\r\n");
        assert_eq!(PublicKey::parse(&crlf, Path::new("k")).unwrap(), pk);
    }

    #[test]
    fn trusted_keys_from_file_and_directory() {
        let d_dir = tempdir("dir");
        let d = d_dir.path();
        let (_, a) = pair(6);
        let (_, b) = pair(7);
        std::fs::write(d.join("a.pub"), a.to_text()).unwrap();
        std::fs::write(d.join("b.pub"), b.to_text()).unwrap();
        std::fs::write(d.join("notes.txt"), "not a key").unwrap();
        let t = TrustedKeys::load(d).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(a.id()), Some(&a));
        assert_eq!(t.get(b.id()), Some(&b));
        let desc = t.describe();
        assert!(
            desc.contains(&d.display().to_string()) && desc.contains(a.id()),
            "{desc}"
        );
        let one = TrustedKeys::load(&d.join("b.pub")).unwrap();
        assert_eq!(one.ids().collect::<Vec<_>>(), [b.id()]);

        let empty_dir = tempdir("empty");
        let empty = empty_dir.path();
        let e = TrustedKeys::load(empty).unwrap_err();
        assert!(matches!(e, KeyError::NoKeys { .. }), "{e}");
        let e = TrustedKeys::load(&d.join("missing.pub")).unwrap_err();
        assert!(matches!(e, KeyError::Io { .. }), "{e}");
        std::fs::write(d.join("c.pub"), "garbage").unwrap();
        let e = TrustedKeys::load(d).unwrap_err();
        assert!(e.to_string().contains("c.pub"), "{e}");
    }
}
