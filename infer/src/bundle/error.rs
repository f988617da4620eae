//! Why a bundle was refused: [`BundleLoadError`] names the bundle file, [`LoadErrorKind`]
//! says what is wrong and how to fix it.

use fas_core::bundle::BundleError;

const REBUILD: &str = "rebuild it with `fas-quantize bundle`";

/// A bundle that cannot be used. Displays as `<bundle file>: <what is wrong> — <fix>`; its
/// `source()` is the kind's cause (an I/O error), so a printed chain shows it once.
#[derive(Debug)]
pub struct BundleLoadError {
    /// The bundle file (or whatever the bytes were read from).
    pub origin: String,
    pub kind: LoadErrorKind,
}

impl std::fmt::Display for BundleLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bundle {}: {}", self.origin, self.kind)
    }
}

impl std::error::Error for BundleLoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

impl BundleLoadError {
    pub(crate) fn new(origin: &str, kind: LoadErrorKind) -> BundleLoadError {
        BundleLoadError {
            origin: origin.to_string(),
            kind,
        }
    }
}

/// What is wrong with a bundle; each message ends with the fix.
#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    #[error("cannot read it — check the path and its permissions")]
    Io {
        #[source]
        source: std::io::Error,
    },
    #[error("the tar ends at byte {len} inside {what} (which needs {needed} bytes) — the file is truncated; copy it again or {REBUILD}")]
    Truncated { what: String, needed: u64, len: u64 },
    #[error("not a valid bundle tar: {problem} (at byte {offset}) — the file is corrupt or not a .fasb; copy it again or {REBUILD}")]
    Corrupt { offset: u64, problem: String },
    #[error("{} is {size} bytes, over the {limit}-byte limit of a bundle — pack only the liveness model and its detector", match name { Some(n) => format!("entry \"{n}\" brings the bundle's content to"), None => "the file".to_string() })]
    Oversized {
        /// The entry that crossed the limit; `None` when the file itself is too large.
        name: Option<String>,
        size: u64,
        limit: u64,
    },
    #[error("entry \"{name}\" is a {kind}, not a regular file — a bundle holds only plain files; {REBUILD}")]
    NonRegularEntry { name: String, kind: &'static str },
    #[error("entry name {name:?} is not a plain file name (it has a '/' or '\\', is '.', '..' or empty, or is not UTF-8) — {REBUILD} rather than packing it by hand")]
    PathNotPlain { name: String },
    #[error("entry \"{name}\" appears twice — the bundle was altered; {REBUILD}")]
    DuplicateEntry { name: String },
    #[error("entry \"{name}\" {reason} — the bundle was altered or built by hand; {REBUILD}")]
    UnexpectedEntry { name: String, reason: String },
    #[error("has no \"{name}\" — {fix}")]
    MissingFile { name: String, fix: String },
    #[error("manifest.sig: {problem} — re-sign the bundle with `fas-quantize sign`")]
    SignatureMalformed { problem: String },
    #[error("manifest.sig: signed by key {key_id}, which is not trusted here (trusted keys were looked for in {looked_in}) — install that key's .pub file there, or re-sign the bundle with a trusted key (`fas-quantize sign`)")]
    UnknownKey { key_id: String, looked_in: String },
    #[error("manifest.sig: the ed25519 signature by key {key_id} does not verify over manifest.json — the manifest was altered after signing or signed with another key; rebuild the bundle or re-sign it (`fas-quantize sign`)")]
    BadSignature { key_id: String },
    #[error("manifest.json has format_version {found}, newer than this fas reads (up to {supported}) — upgrade fas here, or rebuild the bundle with a fas-quantize of this version")]
    FutureVersion { found: u64, supported: u32 },
    #[error(transparent)]
    ManifestInvalid(BundleError),
    #[error("file \"{name}\" has sha256 {actual}, but manifest.json records {expected} — the file was altered or corrupted; copy the bundle again or {REBUILD}")]
    HashMismatch {
        name: String,
        expected: String,
        actual: String,
    },
}

impl From<BundleError> for LoadErrorKind {
    fn from(e: BundleError) -> Self {
        match e {
            BundleError::FutureVersion { found, supported } => {
                LoadErrorKind::FutureVersion { found, supported }
            }
            BundleError::HashMismatch {
                name,
                expected,
                actual,
            } => LoadErrorKind::HashMismatch {
                name,
                expected,
                actual,
            },
            BundleError::UnlistedFile { name } => LoadErrorKind::UnexpectedEntry {
                name,
                reason: "is not listed in manifest.json".into(),
            },
            other => LoadErrorKind::ManifestInvalid(other),
        }
    }
}
