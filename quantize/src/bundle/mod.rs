//! Writing and signing model bundles (`*.fasb`, ARCHITECTURE.md contract 4).
//!
//! Signing keys are `fas_infer::bundle::secret` (re-exported here); [`writer`] packs a draft manifest and its
//! models into a deterministic tar, signs it and verifies the result with the same
//! `fas_infer::bundle` reader a device uses (where the format is documented).

pub mod fixture;
pub mod writer;

pub use fas_infer::bundle::secret::{keygen, KeyPairFiles, KeygenError, SecretKey};
pub use writer::{parse_draft, sign_bundle, write_bundle, Signing, WriteError};
