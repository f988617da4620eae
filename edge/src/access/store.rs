//! The enrolment store: who may enter, as face templates (embeddings, never images) and
//! credentials, encrypted at rest.
//!
//! # File format (`enrollment.fas`, mode 0600, written atomically)
//!
//! ```json
//! {"format":"fas-enrollment","version":1,"model_sha256":"<hex>","nonce":"<24 hex>","ciphertext":"<hex>"}
//! ```
//!
//! `ciphertext` is ChaCha20-Poly1305 over the JSON of [`People`] with the 32-byte key in
//! `enrollment.key` (mode 0600, made on first use, kept with the device's other keys), and
//! the header — format, version and `model_sha256` — as associated data: a store cannot be
//! read without the key, and neither its contents nor the embedding model it is bound to can
//! be changed without the tag failing. A fresh nonce is drawn for every write.
//!
//! The key protects a store that leaves the device without it (a copied file, a backup, a
//! card whose key lives elsewhere: set `access.enrollment_key` to another medium). A card
//! that holds both the store and the key gives the faces to whoever reads it; say so to the
//! site, or keep the key off the card.
//!
//! `enroll export` writes the same [`People`] JSON in the clear (mode 0600) with the model
//! hash, for moving a site's people to another board; `enroll import` re-encrypts it under
//! that board's key and refuses a file made with another embedding model.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

use super::credential::Credential;

pub const STORE_FORMAT: &str = "fas-enrollment";
pub const EXPORT_FORMAT: &str = "fas-enrollment-export";
pub const STORE_VERSION: u32 = 1;
const KEY_LEN: usize = 32;
/// The model hash of a store made without an embedding model (credentials only).
pub const NO_MODEL: &str = "none";

/// One enrolled person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// The id that audit records name (never the name).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub credentials: Vec<Credential>,
    /// L2-normalised embeddings, one per enrolment pose.
    pub templates: Vec<Vec<f32>>,
    /// Wall-clock time of enrolment, ms since the Unix epoch.
    pub enrolled_ms: u64,
}

/// Everyone in a store.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct People {
    pub people: Vec<Person>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    format: String,
    version: u32,
    model_sha256: String,
    nonce: String,
    ciphertext: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Export {
    format: String,
    version: u32,
    model_sha256: String,
    people: People,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: cannot {action}", file.display())]
    Io {
        file: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not an enrolment store ({problem}) — restore it from `fas-edge enroll export`, or move it aside to start empty", file.display())]
    Corrupt { file: PathBuf, problem: String },
    #[error("{}: field \"version\": {found} is newer than this fas reads ({STORE_VERSION}) — upgrade fas-edge", file.display())]
    FutureVersion { file: PathBuf, found: u32 },
    #[error("{}: cannot be decrypted with this key (access.enrollment_key) — the store was made with another key, or edited; restore the key or re-enrol", file.display())]
    Decrypt { file: PathBuf },
    #[error("{}: made with embedding model {found}, but this door runs {expected} — re-enrol everyone, or restore the model the store was made with", file.display())]
    ModelMismatch {
        file: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{}: not a {KEY_LEN}-byte key ({len} bytes) — restore the key file or move it aside (the store can then no longer be read)", file.display())]
    BadKey { file: PathBuf, len: usize },
    #[error("person \"{0}\" is already enrolled — `fas-edge enroll remove {0}` first, or pick another --id")]
    Duplicate(String),
    #[error("credential {credential} already belongs to \"{owner}\"")]
    CredentialTaken {
        credential: Credential,
        owner: String,
    },
    #[error("no person \"{0}\" is enrolled (`fas-edge enroll list` shows who is)")]
    NotFound(String),
    #[error("id \"{0}\": use 1–64 characters from A–Z a–z 0–9 . _ -")]
    BadId(String),
    #[error("person \"{id}\": template {index} has {found} values where the model gives {expected}, or is not finite")]
    BadTemplate {
        id: String,
        index: usize,
        found: usize,
        expected: usize,
    },
}

fn io<'a>(file: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        file: file.to_path_buf(),
        action,
        source,
    }
}

/// The store's key: read, or made (32 random bytes, mode 0600) when `create` and absent.
pub fn load_key(path: &Path, create: bool) -> Result<Key, StoreError> {
    if create && !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir, "create the key's directory"))?;
        }
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        fas_core::atomic::write_atomic_private(path, &key).map_err(io(path, "write the key"))?;
        return Ok(key);
    }
    let bytes = std::fs::read(path).map_err(io(path, "read the key"))?;
    if bytes.len() != KEY_LEN {
        return Err(StoreError::BadKey {
            file: path.to_path_buf(),
            len: bytes.len(),
        });
    }
    Ok(*Key::from_slice(&bytes))
}

fn aad(model_sha256: &str) -> Vec<u8> {
    format!("{STORE_FORMAT}\n{STORE_VERSION}\n{model_sha256}").into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// An open store: its people, bound to one embedding model.
#[derive(Debug, Clone, PartialEq)]
pub struct Store {
    pub model_sha256: String,
    pub people: People,
}

impl Store {
    pub fn empty(model_sha256: &str) -> Store {
        Store {
            model_sha256: model_sha256.to_string(),
            people: People::default(),
        }
    }

    /// Reads and decrypts `path`; refuses a store made for another model than
    /// `expected_model` (`None`: a door that compares no faces, any model). A missing file
    /// is an empty store.
    pub fn load(path: &Path, key: &Key, expected_model: Option<&str>) -> Result<Store, StoreError> {
        let text = match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Store::empty(expected_model.unwrap_or(NO_MODEL)))
            }
            r => r.map_err(io(path, "read the store"))?,
        };
        let corrupt = |problem: String| StoreError::Corrupt {
            file: path.to_path_buf(),
            problem,
        };
        let env: Envelope =
            serde_json::from_slice(&text).map_err(|e| corrupt(format!("JSON: {e}")))?;
        if env.format != STORE_FORMAT {
            return Err(corrupt(format!("format \"{}\"", env.format)));
        }
        if env.version > STORE_VERSION {
            return Err(StoreError::FutureVersion {
                file: path.to_path_buf(),
                found: env.version,
            });
        }
        let nonce = unhex(&env.nonce)
            .filter(|n| n.len() == 12)
            .ok_or_else(|| corrupt("field \"nonce\" is not 12 hex bytes".into()))?;
        let ct = unhex(&env.ciphertext)
            .ok_or_else(|| corrupt("field \"ciphertext\" is not hex".into()))?;
        let plain = ChaCha20Poly1305::new(key)
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &aad(&env.model_sha256),
                },
            )
            .map_err(|_| StoreError::Decrypt {
                file: path.to_path_buf(),
            })?;
        if let Some(expected) = expected_model.filter(|&m| m != env.model_sha256) {
            return Err(StoreError::ModelMismatch {
                file: path.to_path_buf(),
                found: env.model_sha256,
                expected: expected.to_string(),
            });
        }
        let people: People = serde_json::from_slice(&plain)
            .map_err(|e| corrupt(format!("decrypted contents: {e}")))?;
        Ok(Store {
            model_sha256: env.model_sha256,
            people,
        })
    }

    /// Encrypts and writes atomically (mode 0600), under a fresh nonce.
    pub fn save(&self, path: &Path, key: &Key) -> Result<(), StoreError> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let plain = serde_json::to_vec(&self.people).expect("people serialise");
        let ct = ChaCha20Poly1305::new(key)
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: &aad(&self.model_sha256),
                },
            )
            .expect("ChaCha20-Poly1305 encryption does not fail on in-memory data");
        let env = Envelope {
            format: STORE_FORMAT.into(),
            version: STORE_VERSION,
            model_sha256: self.model_sha256.clone(),
            nonce: hex(&nonce),
            ciphertext: hex(&ct),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir, "create the store's directory"))?;
        }
        let mut bytes = serde_json::to_vec(&env).expect("envelope serialises");
        bytes.push(b'\n');
        fas_core::atomic::write_atomic_private(path, &bytes).map_err(io(path, "write the store"))
    }

    /// Adds `p`: its id must be new and its credentials nobody else's.
    pub fn add(&mut self, p: Person, dim: usize) -> Result<(), StoreError> {
        check_id(&p.id)?;
        if self.get(&p.id).is_some() {
            return Err(StoreError::Duplicate(p.id));
        }
        for (index, t) in p.templates.iter().enumerate() {
            if t.len() != dim || !t.iter().all(|v| v.is_finite()) {
                return Err(StoreError::BadTemplate {
                    id: p.id.clone(),
                    index,
                    found: t.len(),
                    expected: dim,
                });
            }
        }
        for c in &p.credentials {
            if let Some(owner) = self.by_credential(c) {
                return Err(StoreError::CredentialTaken {
                    credential: *c,
                    owner: owner.id.clone(),
                });
            }
        }
        self.people.people.push(p);
        Ok(())
    }

    /// Removes the person with `id` (the caller saves: the old file is replaced, so the
    /// templates are gone from disk, not flagged).
    pub fn remove(&mut self, id: &str) -> Result<Person, StoreError> {
        let i = self
            .people
            .people
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        Ok(self.people.people.remove(i))
    }

    pub fn get(&self, id: &str) -> Option<&Person> {
        self.people.people.iter().find(|p| p.id == id)
    }

    pub fn by_credential(&self, c: &Credential) -> Option<&Person> {
        self.people
            .people
            .iter()
            .find(|p| p.credentials.contains(c))
    }

    /// 1:1 — the best similarity of `embedding` to `id`'s templates.
    pub fn verify(&self, id: &str, embedding: &[f32]) -> Option<f32> {
        self.get(id).and_then(|p| best(p, embedding))
    }

    /// 1:N — the person whose templates come closest to `embedding`, with the similarity.
    pub fn search(&self, embedding: &[f32]) -> Option<(&Person, f32)> {
        self.people
            .people
            .iter()
            .filter_map(|p| best(p, embedding).map(|s| (p, s)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The clear export of this store.
    pub fn export(&self, path: &Path) -> Result<(), StoreError> {
        let e = Export {
            format: EXPORT_FORMAT.into(),
            version: STORE_VERSION,
            model_sha256: self.model_sha256.clone(),
            people: self.people.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&e).expect("export serialises");
        bytes.push(b'\n');
        fas_core::atomic::write_atomic_private(path, &bytes).map_err(io(path, "write the export"))
    }

    /// Adds everyone in the export at `path` (made for `self`'s model) to this store; the
    /// whole import is refused if any person would be refused.
    pub fn import(&mut self, path: &Path, dim: usize) -> Result<usize, StoreError> {
        let text = std::fs::read(path).map_err(io(path, "read the export"))?;
        let corrupt = |problem: String| StoreError::Corrupt {
            file: path.to_path_buf(),
            problem,
        };
        let e: Export = serde_json::from_slice(&text).map_err(|e| corrupt(format!("JSON: {e}")))?;
        if e.format != EXPORT_FORMAT {
            return Err(corrupt(format!("format \"{}\"", e.format)));
        }
        if e.version > STORE_VERSION {
            return Err(StoreError::FutureVersion {
                file: path.to_path_buf(),
                found: e.version,
            });
        }
        if e.model_sha256 != self.model_sha256 {
            return Err(StoreError::ModelMismatch {
                file: path.to_path_buf(),
                found: e.model_sha256,
                expected: self.model_sha256.clone(),
            });
        }
        let mut next = self.clone();
        let n = e.people.people.len();
        for p in e.people.people {
            next.add(p, dim)?;
        }
        *self = next;
        Ok(n)
    }

    /// Every credential, for checks and listings.
    pub fn credentials(&self) -> BTreeSet<Credential> {
        self.people
            .people
            .iter()
            .flat_map(|p| p.credentials.iter().copied())
            .collect()
    }
}

fn check_id(id: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadId(id.chars().take(80).collect()))
    }
}

fn cosine(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    let s = dot / (na * nb);
    s.is_finite().then_some(s)
}

fn best(p: &Person, e: &[f32]) -> Option<f32> {
    p.templates
        .iter()
        .filter_map(|t| cosine(t, e))
        .max_by(f32::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MODEL: &str = "aa11";

    fn person(id: &str, card: u64, t: Vec<f32>) -> Person {
        Person {
            id: id.into(),
            name: Some(format!("{id} name")),
            credentials: vec![Credential {
                bits: 26,
                facility: 1,
                card,
            }],
            templates: vec![t],
            enrolled_ms: 1,
        }
    }

    fn two() -> Store {
        let mut s = Store::empty(MODEL);
        s.add(person("alice", 1, vec![1.0, 0.0, 0.0]), 3).unwrap();
        s.add(person("bob", 2, vec![0.0, 1.0, 0.0]), 3).unwrap();
        s
    }

    #[test]
    fn round_trip_is_encrypted_and_private() {
        let d = tempfile::tempdir().unwrap();
        let (store, keyp) = (d.path().join("e.fas"), d.path().join("e.key"));
        let key = load_key(&keyp, true).unwrap();
        let s = two();
        s.save(&store, &key).unwrap();
        let text = std::fs::read_to_string(&store).unwrap();
        assert!(!text.contains("alice") && !text.contains("name"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        for p in [&store, &keyp] {
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let again = load_key(&keyp, true).unwrap();
        assert_eq!(again, key, "an existing key is kept");
        assert_eq!(Store::load(&store, &key, Some(MODEL)).unwrap(), s);
        // A missing store is an empty one.
        let none = Store::load(&d.path().join("none"), &key, Some(MODEL)).unwrap();
        assert!(none.people.people.is_empty());
    }

    #[test]
    fn attacks_on_the_file_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join("e.fas");
        let key = load_key(&d.path().join("e.key"), true).unwrap();
        two().save(&store, &key).unwrap();
        let text = std::fs::read_to_string(&store).unwrap();
        // Another device's key.
        let other = load_key(&d.path().join("other.key"), true).unwrap();
        assert!(matches!(
            Store::load(&store, &other, Some(MODEL)),
            Err(StoreError::Decrypt { .. })
        ));
        // A flipped ciphertext byte.
        let env: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ct = env["ciphertext"].as_str().unwrap();
        let flipped = format!("{}{}", if &ct[..1] == "0" { "1" } else { "0" }, &ct[1..]);
        std::fs::write(&store, text.replace(ct, &flipped)).unwrap();
        assert!(matches!(
            Store::load(&store, &key, Some(MODEL)),
            Err(StoreError::Decrypt { .. })
        ));
        // The model hash swapped in the header to make an old store pass: the tag fails.
        std::fs::write(&store, text.replace(MODEL, "bb22")).unwrap();
        assert!(matches!(
            Store::load(&store, &key, Some("bb22")),
            Err(StoreError::Decrypt { .. })
        ));
        // The store read by a door running another model.
        std::fs::write(&store, &text).unwrap();
        let e = Store::load(&store, &key, Some("cc33")).unwrap_err();
        assert!(matches!(e, StoreError::ModelMismatch { .. }));
        assert!(e.to_string().contains("re-enrol"), "{e}");
        // Garbage, a future version, a short key.
        std::fs::write(&store, "{").unwrap();
        assert!(matches!(
            Store::load(&store, &key, Some(MODEL)),
            Err(StoreError::Corrupt { .. })
        ));
        std::fs::write(&store, text.replace("\"version\":1", "\"version\":9")).unwrap();
        assert!(matches!(
            Store::load(&store, &key, Some(MODEL)),
            Err(StoreError::FutureVersion { found: 9, .. })
        ));
        std::fs::write(d.path().join("short.key"), [0u8; 7]).unwrap();
        assert!(matches!(
            load_key(&d.path().join("short.key"), true),
            Err(StoreError::BadKey { len: 7, .. })
        ));
    }

    #[test]
    fn ids_credentials_and_templates_are_checked() {
        let mut s = two();
        assert!(matches!(
            s.add(person("alice", 9, vec![0.0, 0.0, 1.0]), 3),
            Err(StoreError::Duplicate(_))
        ));
        assert!(matches!(
            s.add(person("carol", 1, vec![0.0, 0.0, 1.0]), 3),
            Err(StoreError::CredentialTaken { .. })
        ));
        assert!(matches!(
            s.add(person("../x", 3, vec![0.0, 0.0, 1.0]), 3),
            Err(StoreError::BadId(_))
        ));
        assert!(matches!(
            s.add(person("carol", 3, vec![0.0, 1.0]), 3),
            Err(StoreError::BadTemplate { .. })
        ));
        assert!(matches!(
            s.add(person("carol", 3, vec![0.0, f32::NAN, 1.0]), 3),
            Err(StoreError::BadTemplate { .. })
        ));
        let c = Credential {
            bits: 26,
            facility: 1,
            card: 2,
        };
        assert_eq!(s.by_credential(&c).unwrap().id, "bob");
        assert_eq!(s.remove("bob").unwrap().id, "bob");
        assert!(s.by_credential(&c).is_none());
        assert!(matches!(s.remove("bob"), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn removal_is_gone_from_disk() {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join("e.fas");
        let key = load_key(&d.path().join("e.key"), true).unwrap();
        let mut s = two();
        s.save(&store, &key).unwrap();
        s.remove("bob").unwrap();
        s.save(&store, &key).unwrap();
        let back = Store::load(&store, &key, Some(MODEL)).unwrap();
        assert!(back.get("bob").is_none());
        // No other file in the directory still holds the old store.
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn export_import_moves_people_and_checks_the_model() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("site.json");
        two().export(&file).unwrap();
        let mut fresh = Store::empty(MODEL);
        assert_eq!(fresh.import(&file, 3).unwrap(), 2);
        assert_eq!(fresh.people, two().people);
        // Importing again is refused as a whole: nobody is half-added.
        assert!(matches!(
            fresh.import(&file, 3),
            Err(StoreError::Duplicate(_))
        ));
        assert_eq!(fresh.people.people.len(), 2);
        let mut other = Store::empty("ffff");
        let e = other.import(&file, 3).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(MODEL) && msg.contains("ffff"), "{msg}");
        std::fs::write(&file, "{\"format\":\"fas-enrollment-export\"").unwrap();
        assert!(matches!(
            Store::empty(MODEL).import(&file, 3),
            Err(StoreError::Corrupt { .. })
        ));
    }

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    proptest! {
        /// 1:N search returns the person whose template is most similar, and a template
        /// searched for itself is found with similarity 1.
        #[test]
        fn search_finds_the_best_template(
            ts in proptest::collection::vec(proptest::collection::vec(0.1f32..1.0, 4), 1..12),
            pick in any::<proptest::sample::Index>(),
        ) {
            let mut s = Store::empty(MODEL);
            for (i, t) in ts.iter().enumerate() {
                s.add(Person { id: format!("p{i}"), name: None, credentials: vec![],
                    templates: vec![unit(t.clone())], enrolled_ms: 0 }, 4).unwrap();
            }
            let i = pick.index(ts.len());
            let q = unit(ts[i].clone());
            let (p, sim) = s.search(&q).unwrap();
            prop_assert!((sim - 1.0).abs() < 1e-4);
            // Whoever is found is at least as close as the picked one.
            let picked = format!("p{}", i);
            let found = s.verify(&p.id, &q).unwrap();
            prop_assert!(found >= s.verify(&picked, &q).unwrap() - 1e-6);
            for other in &s.people.people {
                prop_assert!(s.verify(&other.id, &q).unwrap() <= sim + 1e-6);
            }
        }
    }
}
